"""The real `supervisorctl` (Debian's supervisor package) against a real Wharf daemon serving
`[supervisor_rpc]`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until

pytestmark = pytest.mark.skipif(shutil.which("supervisorctl") is None,
                                reason="supervisorctl (Debian's supervisor) is not installed")

APPS = """
    [apps.web]
    command = ["sh", "-c", "while true; do echo hello from web; sleep 0.2; done"]
    instances = 2
    startsecs = 0.2

    [apps.job]
    command = "sleep 600"
    startsecs = 0.2
"""


class Ctl:
    """supervisorctl pointed at the daemon."""

    def __init__(self, url: str, user: str = "admin", password: str = "s3cret") -> None:
        self.args = ["supervisorctl", "-s", url, "-u", user, "-p", password]

    def __call__(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.args, *command], capture_output=True, text=True,
                              timeout=60)

    def lines(self, *command: str) -> dict[str, list[str]]:
        """`status`-like output: name -> the rest of its line, split."""
        return {line.split()[0]: line.split()[1:] for line in self(*command).stdout.splitlines()}


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="wharf-rpc-", dir="/tmp"))  # sun_path is short
    try:
        yield path
    finally:
        shutil.rmtree(path)


def start(wharf: Wharf, sock_dir: Path, listen: str | None = None) -> Ctl:
    listen = listen or f"unix:{sock_dir}/supervisor.sock"
    wharf.write_config(f"""
        [supervisor_rpc]
        listen = "{listen}"
        username = "admin"
        password = "s3cret"
    """ + APPS)
    wharf.up()
    wharf.wait_ready("web", 2)
    wharf.wait_ready("job", 1)
    url = f"unix://{listen.removeprefix('unix:')}" if listen.startswith("unix:") \
        else f"http://{listen}"
    return Ctl(url)


def test_status_lists_every_instance_running_with_pid_and_uptime(wharf: Wharf, sock_dir: Path):
    ctl = start(wharf, sock_dir)
    result = ctl("status")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = ctl.lines("status")
    assert list(rows) == ["web:web_00", "web:web_01", "job"]
    for name, row in zip(rows, wharf.status(), strict=True):
        assert rows[name][:2] == ["RUNNING", "pid"]
        assert rows[name][2] == f"{row['pid']},"
        assert rows[name][3] == "uptime"
    assert list(ctl.lines("status", "web:*")) == ["web:web_00", "web:web_01"]


def test_stop_and_start_one_instance_leave_the_others_alone(wharf: Wharf, sock_dir: Path):
    ctl = start(wharf, sock_dir)
    before = {r["instance"]: r["pid"] for r in wharf.instances("web")}
    assert ctl("stop", "web:web_01").stdout.strip() == "web:web_01: stopped"
    assert ctl.lines("status")["web:web_01"][0] == "STOPPED"
    assert wharf.row("web", 0)["pid"] == before[0] and wharf.row("web", 0)["state"] == "RUNNING"
    assert ctl("start", "web:web_01").stdout.strip() == "web:web_01: started"
    assert wharf.row("web", 1)["state"] == "RUNNING" and wharf.row("web", 1)["pid"] != before[1]
    again = ctl("start", "web:web_01")
    assert "web:web_01: ERROR (already started)" in again.stdout


def test_restart_and_stop_a_group_or_all(wharf: Wharf, sock_dir: Path):
    ctl = start(wharf, sock_dir)
    job = wharf.row("job")["pid"]
    restarted = ctl("restart", "job")
    assert restarted.stdout.splitlines() == ["job: stopped", "job: started"]
    assert wharf.row("job")["pid"] != job
    assert ctl("stop", "web:*").stdout.splitlines() == ["web:web_00: stopped",
                                                        "web:web_01: stopped"]
    assert [r["state"] for r in wharf.instances("web")] == ["STOPPED", "STOPPED"]
    assert ctl("start", "all").stdout.splitlines() == ["web:web_00: started",
                                                       "web:web_01: started"]
    assert ctl("stop", "nope").stdout.strip() == "nope: ERROR (no such process)"


def test_tail_shows_the_apps_output_and_tail_f_follows_it(wharf: Wharf, sock_dir: Path):
    ctl = start(wharf, sock_dir)
    wait_until(lambda: "hello from web" in ctl("tail", "web:web_00").stdout)
    assert ctl("tail", "job", "stderr").returncode == 0  # nothing written yet: empty
    follow = subprocess.Popen([*ctl.args, "tail", "-f", "web"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert follow.stdout is not None
        seen = [follow.stdout.readline() for _ in range(12)]  # new lines keep coming
        assert seen[0].startswith("==> Press Ctrl-C to exit")
        assert sum("hello from web" in line for line in seen) >= 10
    finally:
        follow.kill()
        follow.wait()


def test_a_wrong_password_is_refused(wharf: Wharf, sock_dir: Path):
    ctl = start(wharf, sock_dir)
    wrong = Ctl(ctl.args[2], password="nope")
    result = wrong("stop", "job")
    assert "Server requires authentication" in result.stdout
    assert wharf.row("job")["state"] == "RUNNING"


def test_pid_and_version(wharf: Wharf, sock_dir: Path):
    ctl = start(wharf, sock_dir)
    assert ctl("pid").stdout.strip() == str(wharf.daemon.pid if wharf.daemon else 0)
    assert ctl("pid", "job").stdout.strip() == str(wharf.row("job")["pid"])
    assert ctl("version").stdout.startswith("wharf ")


def test_reread_and_update_after_editing_wharf_toml(wharf: Wharf, sock_dir: Path):
    ctl = start(wharf, sock_dir)
    text = wharf.config.read_text()
    wharf.config.write_text(text.replace('command = "sleep 600"', 'command = "sleep 601"')
                            + '\n[apps.extra]\ncommand = "sleep 602"\nstartsecs = 0.2\n')
    assert ctl("reread").stdout.splitlines() == ["extra: available", "job: changed"]
    assert "extra" not in ctl.lines("status")  # reread changes nothing
    updated = ctl("update").stdout.splitlines()
    assert "extra: added process group" in updated and "job: updated process group" in updated
    rows = ctl.lines("status")
    assert rows["extra"][0] == "RUNNING" and rows["job"][0] == "RUNNING"
    assert "sleep 601" in Path(f"/proc/{wharf.row('job')['pid']}/cmdline").read_text(
        errors="replace").replace("\0", " ")
    assert ctl("update").stdout == ""  # nothing left to do


def test_supervisorctl_over_tcp(wharf: Wharf, sock_dir: Path):
    with socket.socket() as probe:  # a free port, for the config file
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = start(wharf, sock_dir, listen=f"127.0.0.1:{port}")
    assert list(ctl.lines("status")) == ["web:web_00", "web:web_01", "job"]
