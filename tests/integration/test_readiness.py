"""Readiness with real apps: probed where the instance serves, and only its own answer counts."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import get


@pytest.mark.parametrize("host", ["[::1]", "127.0.0.2"])
def test_a_socket_mode_app_on_another_address_than_127_0_0_1_becomes_ready(wharf: Wharf,
                                                                          host: str):
    proxy_port, app_port = free_port(), free_port()
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{proxy_port}"]
        [apps.web]
        command = "{{py}} {{apps}}/fdapp.py"
        socket = "tcp://{host}:{app_port}"
        startsecs = 0
        ready_timeout = "10s"
        [[routes]]
        app = "web"
    """)
    wharf.up()
    wharf.wait_ready("web", 1)
    assert get(proxy_port, "/").status == 200


def test_an_instance_whose_port_another_process_answers_is_not_ready(wharf: Wharf,
                                                                    tmp_path: Path):
    """An orphan (of a daemon killed with SIGKILL, say) listens on the instance's port: the
    instance, which never listens, must not pass for ready because the orphan answers."""
    hang = tmp_path / "hang"
    hang.write_text("this instance never listens")
    # A range of one port outside the default one, which other daemons on this machine take
    # from while this instance is stopped.
    only = free_port()
    wharf.write_config(f"""
        [daemon]
        port_range = "{only}-{only}"
        [proxy]
        listen = ["127.0.0.1:{free_port()}"]
        [apps.web]
        command = "{{py}} {{apps}}/httpapp.py"
        env = {{ HANG_IF_EXISTS = "{hang}" }}
        startsecs = 0
        ready_timeout = "1s"
        [[routes]]
        app = "web"
    """)
    wharf.up()
    port = wharf.wait_state("web", "RUNNING")["port"]
    assert port == only
    assert wharf.run("stop", "web").returncode == 0
    with socket.socket() as orphan:
        orphan.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        orphan.bind(("127.0.0.1", port))
        orphan.listen()
        started = wharf.run("start", "web")  # on the same port again
        says = f"127.0.0.1:{port} is answered by pid {os.getpid()} ("
        assert started.returncode == 1 and says in started.stderr, started.stderr
        row = wharf.row("web")
        assert says in row["reason"] and "not by this instance" in row["reason"]
        assert row["port"] == port and row["state"] == "RUNNING" and not row["ready"]


def test_a_socket_mode_instance_that_never_accepts_is_not_ready(wharf: Wharf):
    """Every instance inherits the daemon's listening socket, so a connect succeeds (the
    kernel's backlog, or a sibling, answers) even for an instance that never accepts: it is
    ready only once its own process has accepted a connection."""
    proxy_port, app_port = free_port(), free_port()
    second_sleeps = 'test "$WHARF_INSTANCE" = 1 && exec sleep 3600; exec {py} {apps}/fdapp.py'
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{proxy_port}"]
        [apps.web]
        command = ["sh", "-c", '{second_sleeps}']
        instances = 2
        socket = "tcp://127.0.0.1:{app_port}"
        startsecs = 0
        ready_timeout = "2s"
        [[routes]]
        app = "web"
    """)
    wharf.up()
    wharf.wait_ready("web", 1)
    wait_until(lambda: "has not accepted" in wharf.row("web", 1)["reason"], message="why")
    assert wharf.row("web", 0)["ready"] and not wharf.row("web", 1)["ready"]
    assert get(proxy_port, "/").status == 200
