"""The daemon's fault paths: a daemon killed with kill -9, apps that fail at start, exit codes."""

from __future__ import annotations

import os
import signal

import psutil

from tests.integration.conftest import Wharf, pid_alive, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import probe

ROUTED = """
    [proxy]
    listen = ["127.0.0.1:{port}"]
    [apps.web]
    command = "{py} {apps}/httpapp.py"
    instances = 2
    startsecs = "0.2s"
    ready_timeout = "5s"
    [[routes]]
    app = "web"
"""


def test_up_after_kill_9_of_the_daemon_stops_its_leftovers_first(wharf: Wharf):
    port = free_port()
    wharf.write_config(ROUTED.replace("{port}", str(port)))
    wharf.up()
    wharf.wait_ready("web", 2)
    old = [r["pid"] for r in wharf.instances("web")]
    assert wharf.daemon is not None
    wharf.daemon.send_signal(signal.SIGKILL)
    wharf.daemon.wait()
    assert all(pid_alive(pid) for pid in old)  # the apps outlive a killed daemon
    started = wharf.run("up", "-d")
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        said = started.stderr
        assert "did not stop" not in said and "it left: web.0 (pid" in said and "web.1 (pid" in said
        assert not any(pid_alive(pid) for pid in old)
        rows = wharf.instances("web")
        assert [r["state"] for r in rows] == ["RUNNING"] * 2 and all(r["ready"] for r in rows)
        assert not set(old) & {r["pid"] for r in rows}
        assert all(r["restarts"] == 0 for r in rows)  # no crash loop on a taken port
        new_ports = {f"port={r['port']} ".encode() for r in rows}
        answers: list[bytes] = []

        def a_new_instance_answers() -> bool:
            answers.append(probe(port))
            return any(p in answers[-1] for p in new_ports)

        try:
            wait_until(a_new_instance_answers, message="a new instance to answer")
        except AssertionError:
            raise AssertionError(f"no new instance answered; the last answers: {answers[-3:]}") \
                from None
    finally:
        wharf.run("down")


def test_up_leaves_alone_a_process_that_took_a_recorded_pid(wharf: Wharf, tmp_path):
    """The record holds each process's start time: a pid given to another process since is
    not ours to stop."""
    import json

    wharf.write_config("""
        [apps.a]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
    """)
    state = wharf.root / ".wharf"
    state.mkdir(mode=0o700)
    me = psutil.Process(os.getpid())
    (state / "processes.json").write_text(json.dumps({
        "daemon": {"pid": 1, "started": 0.0},
        "processes": [{"name": "a.0", "pid": me.pid, "started": me.create_time() - 100}]}))
    started = wharf.run("up", "-d")
    try:
        assert started.returncode == 0, started.stderr
        assert "left" not in started.stderr
    finally:
        wharf.run("down")


def test_up_detached_exits_1_naming_an_app_that_fails_to_start(wharf: Wharf):
    wharf.write_config("""
        [apps.good]
        command = "{py} {apps}/sleeper.py"
        startsecs = "0.2s"
        [apps.bad]
        command = "{py} -c 'raise SystemExit(3)'"
        startsecs = "3s"
        backoff = "0.05s"
        startretries = 1
    """)
    started = wharf.run("up", "-d")
    try:
        assert started.returncode == 1, started.stdout + started.stderr
        assert "bad.0: FATAL (exited too quickly (exit status 3)" in started.stderr
        assert "good" not in started.stderr
        assert wharf.row("good")["state"] == "RUNNING"  # the daemon runs on
    finally:
        wharf.run("down")


def test_up_detached_waits_until_the_routed_instances_take_traffic(wharf: Wharf):
    port = free_port()
    wharf.write_config(ROUTED.replace("{port}", str(port)).replace(
        'ready_timeout = "5s"', 'ready_timeout = "10s"\nenv = { LISTEN_AFTER = "1" }'))
    started = wharf.run("up", "-d")
    try:
        assert started.returncode == 0, started.stderr
        assert probe(port).startswith(b"HTTP/1.1 200")  # the proxy listens, the app answers
        assert all(r["ready"] for r in wharf.status())
    finally:
        wharf.run("down")


def test_a_one_shot_job_that_succeeds_is_not_a_start_failure(wharf: Wharf):
    wharf.write_config("""
        [apps.migrate]
        command = "{py} -c 'pass'"
        autorestart = "never"
        startsecs = 0
    """)
    started = wharf.run("up", "-d")
    try:
        assert started.returncode == 0, started.stderr
    finally:
        wharf.run("down")


def test_reload_adding_a_failing_app_exits_1_naming_it(wharf: Wharf):
    wharf.write_config("""
        [apps.good]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
    """)
    wharf.up()
    wharf.config.write_text(wharf.config.read_text() + """
[apps.bad]
command = "/nonexistent/binary"
startretries = 0
""")
    reloaded = wharf.run("reload")
    assert reloaded.returncode == 1, reloaded.stdout
    assert "bad (bad.0: FATAL (spawn error" in reloaded.stdout
