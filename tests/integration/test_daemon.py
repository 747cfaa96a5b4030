"""The daemon and the CLI: logs, reload, signals, detaching, the socket, config errors."""

from __future__ import annotations

import os
import pwd
import select
import signal
import stat
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import PY, Wharf, pid_alive, wait_until
from wharf import __version__

SLEEPER = """
    [apps.{name}]
    command = "{py} {apps}/sleeper.py"
    startsecs = 0
"""


def test_output_is_captured_with_timestamps_and_shown_by_logs(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a"))
    wharf.up()
    wharf.wait_state("a", "RUNNING")
    logs = wharf.root / ".wharf" / "logs"
    wait_until(lambda: (logs / "a.err.log").exists() and (logs / "a.out.log").exists())
    result = wharf.run("logs", "a", "-n", "10")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert any(" a.0 | ready app=a" in line for line in lines)
    assert any(" a.0 | to stderr" in line for line in lines)
    assert all(line[:4].isdigit() and line[10] == " " and line[19] == "." for line in lines)


def test_logs_follow_streams_new_lines(wharf: Wharf):
    wharf.write_config("""
        [apps.ticker]
        command = ["{py}", "-u", "-c",
                   "import time\\nwhile True: print('tick'); time.sleep(0.05)"]
        startsecs = 0
        autorestart = "never"
    """)
    wharf.up()
    follower = subprocess.Popen([PY, "-m", "wharf", "-c", str(wharf.config), "logs", "ticker",
                                 "-f", "-n", "0"], stdout=subprocess.PIPE, text=True)
    try:
        seen = [follower.stdout.readline() for _ in range(5)]  # type: ignore[union-attr]
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    assert all("ticker.0 | tick" in line for line in seen)


def test_a_slow_log_follower_is_told_what_it_missed(wharf: Wharf):
    """Past 1 MiB unsent to a follower, lines are dropped for it; the next line it gets
    says how many."""
    wharf.write_config("""
        [apps.flood]
        command = "{py} {apps}/flood.py"
        startsecs = 0
        autorestart = "never"
    """)
    wharf.up()
    follower = subprocess.Popen([PY, "-m", "wharf", "-c", str(wharf.config), "logs", "flood",
                                 "-f", "-n", "0"], stdout=subprocess.PIPE)
    assert follower.stdout is not None
    received = b""
    try:
        time.sleep(4)  # read nothing while the flood fills every buffer on the way
        deadline = time.monotonic() + 30
        while b"lines dropped" not in received[-(1 << 20):] and time.monotonic() < deadline:
            if select.select([follower.stdout], [], [], 1)[0]:
                received += os.read(follower.stdout.fileno(), 1 << 16)
    finally:
        follower.kill()
        follower.wait(timeout=10)
    assert b"lines dropped: this reader was too slow" in received


def test_logs_rotate_by_size(wharf: Wharf):
    wharf.write_config("""
        [apps.chatty]
        command = "{py} {apps}/chatty.py"
        env = { COUNT = "3000", PAD = "100" }
        startsecs = 0
        log_max_size = "64KB"
        log_backups = 2
    """)
    wharf.up()
    logs = wharf.root / ".wharf" / "logs"
    wait_until(lambda: (logs / "chatty.out.log.2").exists(), message="two rotated files")
    assert not (logs / "chatty.out.log.3").exists()
    wait_until(lambda: "line 2999 " in (logs / "chatty.out.log").read_text())
    for path in logs.glob("chatty.out.log*"):
        assert path.stat().st_size <= 64_000


def test_reload_applies_only_the_difference(wharf: Wharf):
    wharf.write_config("""
        [apps.keep]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
        [apps.change]
        command = "{py} {apps}/sleeper.py one"
        startsecs = 0
        [apps.scale]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
        [apps.drop]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
    """)
    wharf.up()
    for app in ("keep", "change", "scale", "drop"):
        wharf.wait_state(app, "RUNNING")
    before = {r["app"]: r["pid"] for r in wharf.status()}
    wharf.write_config("""
        [apps.keep]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
        [apps.change]
        command = "{py} {apps}/sleeper.py two"
        startsecs = 0
        [apps.scale]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
        instances = 3
        [apps.new]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
    """)
    result = wharf.run("reload")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["added: new", "removed: drop", "rolled: change",
                                          "scaled: scale", "unchanged: keep"]
    wharf.wait_state("scale", "RUNNING", 2)
    wharf.wait_state("new", "RUNNING")
    after = wharf.status()
    pids = {(r["app"], r["instance"]): r["pid"] for r in after}
    assert pids[("keep", 0)] == before["keep"]
    assert pids[("scale", 0)] == before["scale"]
    assert pids[("change", 0)] != before["change"]
    assert ("drop", 0) not in pids and not pid_alive(before["drop"])
    assert {r["app"] for r in after} == {"keep", "change", "scale", "new"}


def test_reload_scales_down(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "s") + "instances = 3\n")
    wharf.up()
    wharf.wait_state("s", "RUNNING", 2)
    gone = wharf.row("s", 2)["pid"]
    wharf.write_config(SLEEPER.replace("{name}", "s") + "instances = 1\n")
    assert wharf.run("reload").stdout.strip() == "scaled: s"
    assert [r["instance"] for r in wharf.status()] == [0]
    assert not pid_alive(gone)


def test_a_bad_file_on_reload_changes_nothing(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a"))
    wharf.up()
    pid = wharf.wait_state("a", "RUNNING")["pid"]
    wharf.write_config("""
        [apps.a]
        command = "sleep 1"
        instances = 0
        startsecs = "never"
    """)
    result = wharf.run("reload")
    assert result.returncode == 2
    assert "apps.a.instances: must be >= 1, got 0" in result.stderr
    assert "apps.a.startsecs" in result.stderr
    assert wharf.row("a")["pid"] == pid


def test_sighup_reloads(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a"))
    wharf.up()
    wharf.wait_state("a", "RUNNING")
    wharf.write_config(SLEEPER.replace("{name}", "a") + SLEEPER.replace("{name}", "b"))
    assert wharf.daemon is not None
    wharf.daemon.send_signal(signal.SIGHUP)
    wharf.wait_state("b", "RUNNING")
    assert "reloaded: added b" in wharf.daemon_log.read_text()


def test_sigterm_stops_every_app_and_the_daemon(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a") + "instances = 3\n")
    wharf.up()
    wharf.wait_state("a", "RUNNING", 2)
    pids = [r["pid"] for r in wharf.status()]
    assert wharf.daemon is not None
    wharf.daemon.send_signal(signal.SIGTERM)
    assert wharf.daemon.wait(timeout=20) == 0
    assert not any(pid_alive(p) for p in pids)
    assert not (wharf.root / ".wharf" / "wharf.sock").exists()
    assert "STOPPING -> STOPPED" in wharf.daemon_log.read_text()


def test_a_second_signal_forces_the_stop(wharf: Wharf):
    wharf.write_config("""
        [apps.stubborn]
        command = "{py} {apps}/stubborn.py"
        startsecs = 0
        stop_timeout = "60s"
    """)
    wharf.up()
    pid = wharf.wait_state("stubborn", "RUNNING")["pid"]
    assert wharf.daemon is not None
    wharf.daemon.send_signal(signal.SIGTERM)
    wait_until(lambda: "stubborn.0: RUNNING -> STOPPING" in wharf.daemon_log.read_text())
    started = time.monotonic()
    wharf.daemon.send_signal(signal.SIGINT)
    assert wharf.daemon.wait(timeout=20) == 0
    assert time.monotonic() - started < 30  # long before the 60 s stop_timeout
    wait_until(lambda: not pid_alive(pid))


def test_up_detaches_and_down_stops_everything(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a"))
    result = wharf.run("up", "-d")
    assert result.returncode == 0, result.stderr
    assert "daemon started" in result.stdout
    daemon_pid = int((wharf.root / ".wharf" / "wharf.pid").read_text())
    try:
        app_pid = wharf.wait_state("a", "RUNNING")["pid"]
        again = wharf.run("up", "-d")
        assert again.returncode == 1 and "already runs" in again.stderr
        down = wharf.run("down")
        assert down.returncode == 0, down.stderr
        assert not pid_alive(daemon_pid) and not pid_alive(app_pid)
        assert "a.0: RUNNING -> STOPPING" in (wharf.root / ".wharf" / "daemon.log").read_text()
    finally:
        if pid_alive(daemon_pid):
            os.kill(daemon_pid, signal.SIGKILL)


def test_commands_without_a_daemon_say_so(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a"))
    result = wharf.run("status")
    assert result.returncode == 1
    assert "no Wharf daemon is running" in result.stderr and "wharf up -d" in result.stderr


def test_a_bad_config_exits_2_listing_every_problem_and_starts_nothing(wharf: Wharf):
    wharf.write_config("""
        [apps.web]
        command = "sleep 1000"
        instances = 0
        stop_signal = "NOPE"
        [apps.worker]
        comand = "sleep 1000"
    """)
    for args in (("check",), ("up",), ("up", "-d")):
        result = wharf.run(*args)
        assert result.returncode == 2, args
        assert "apps.web.instances: must be >= 1, got 0" in result.stderr
        assert "apps.web.stop_signal: is not a known signal name" in result.stderr
        assert "apps.worker.comand: unknown key (did you mean 'command'?)" in result.stderr
        assert "apps.worker.command: missing required key" in result.stderr
        assert "Traceback" not in result.stderr
    assert not (wharf.root / ".wharf").exists()


def test_check_accepts_a_good_file(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a"))
    result = wharf.run("check")
    assert result.returncode == 0 and "ok, 1 app(s)" in result.stdout


def test_the_control_socket_is_private(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a"))
    wharf.up()
    state = wharf.root / ".wharf"
    assert stat.S_IMODE((state / "wharf.sock").stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_another_user_cannot_control_the_daemon(wharf: Wharf):
    wharf.write_config(SLEEPER.replace("{name}", "a"))
    wharf.up()
    os.chmod(wharf.root / ".wharf", 0o755)  # even with the directory open, the socket is not
    nobody = pwd.getpwnam("nobody")
    probe = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
             "try:\n s.connect(sys.argv[1]); print('connected')\n"
             "except PermissionError: print('denied')\n")
    result = subprocess.run(["/usr/bin/python3", "-c", probe,
                             str(wharf.root / ".wharf" / "wharf.sock")],
                            user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                            capture_output=True, text=True, timeout=10, cwd="/")
    assert result.stdout.strip() == "denied", result.stderr


def test_version_and_help():
    def wharf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "wharf", *args], capture_output=True,
                              text=True, timeout=30)

    version = wharf("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"wharf {__version__}"
    help_ = wharf("--help")
    listed = {line.split()[0] for line in help_.stdout.splitlines() if line.startswith("    ")}
    assert help_.returncode == 0 and listed >= {
        "up", "check", "status", "start", "stop", "restart", "scale", "logs", "reload", "down"}
