"""`wharf monit` in a real terminal: a tmux pane of fixed size, on a tmux server of the test's
own, driven with send-keys and read with capture-pane, against a real daemon."""

from __future__ import annotations

import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import wharf
from tests.integration.conftest import APPS, PY, Wharf, wait_until
from tests.integration.proxy_fixture import free_port

# The directory wharf is imported from, for the pane's PYTHONPATH (the tmux server may have
# been started with another environment).
SOURCE = Path(wharf.__file__).resolve().parents[1]
HELLO = 'import os, time; print("hello from pid", os.getpid(), flush=True); time.sleep(600)'


class Pane:
    """One command in a detached tmux session on a private server (its socket in `where`, so
    that it goes with the test's temp dir); closed by its name."""

    def __init__(self, where: Path, width: int, height: int) -> None:
        self.name = f"wharf-monit-{uuid.uuid4().hex[:10]}"
        self.socket = where / f"{self.name}.tmux"
        self.width, self.height = width, height

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a tmux command on this pane's own server (no user config)."""
        return subprocess.run(["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=10, check=False)

    def start(self, cwd: Path, *argv: str) -> None:
        """Run `argv` in the pane; when it ends, the pane says its exit code and stays."""
        command = (f"cd {shlex.quote(str(cwd))} && PYTHONPATH={shlex.quote(str(SOURCE))} "
                   f"{shlex.join(argv)}; echo \"monit exited with $?\"; exec sleep 600")
        started = self.tmux("new-session", "-d", "-s", self.name, "-x", str(self.width),
                            "-y", str(self.height), "sh", "-c", command)
        assert started.returncode == 0, started.stderr

    def screen(self) -> str:
        """The text on the pane now."""
        return self.tmux("capture-pane", "-p", "-t", self.name).stdout

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """Wait until `text` is on the pane; return the screen."""
        try:
            return wait_until(lambda: text in (s := self.screen()) and s, timeout,
                              f"{text!r} on the monitor")  # type: ignore[return-value]
        except AssertionError:
            raise AssertionError(f"{text!r} never showed; the pane:\n{self.screen()}") from None

    def keys(self, *keys: str) -> None:
        """Type keys (tmux names: j, Up, q)."""
        assert self.tmux("send-keys", "-t", self.name, *keys).returncode == 0

    def close(self) -> None:
        """End the session (and so the private server and the command in it)."""
        self.tmux("kill-session", "-t", self.name)


@pytest.fixture
def pane(tmp_path: Path) -> Iterator[Pane]:
    """A 160x45 pane, killed after the test whatever happened."""
    p = Pane(tmp_path, 160, 45)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def two_apps(wharf: Wharf) -> Wharf:
    """A daemon running `web` (routed, so it has backends) and `hello` (prints its pid)."""
    wharf.write_config(f"""
        [apps.web]
        command = ["{{py}}", "{{apps}}/httpapp.py"]

        [apps.hello]
        command = ["{{py}}", "-c", '{HELLO}']

        [proxy]
        listen = ["127.0.0.1:{free_port()}"]

        [[routes]]
        path = "/"
        app = "web"
    """)
    wharf.up()
    wharf.wait_ready("web", 1)
    wharf.wait_state("hello", "RUNNING")
    return wharf


def monit(pane: Pane, w: Wharf) -> None:
    """Start `wharf monit` on the pane and wait for its process list."""
    pane.start(w.root, PY, "-m", "wharf", "-c", str(w.config), "monit")
    pane.wait_for("Processes")


def row_of(screen: str, app: str) -> str:
    """The process-list line of an app's first instance."""
    return next(line for line in screen.splitlines() if f" {app} " in line and "│" in line)


def test_monit_lists_the_apps_with_the_selected_apps_backends(pane, two_apps):
    monit(pane, two_apps)
    web = two_apps.row("web")
    screen = pane.wait_for(str(web["pid"]))
    assert "RUNNING" in row_of(screen, "web") and ">" in row_of(screen, "web")
    backend = two_apps.backends()[0]["backend"]
    screen = pane.wait_for(backend)
    assert "Backends: web" in screen and "Logs: web" in screen
    piped = two_apps.run("monit")  # not a terminal
    assert piped.returncode == 2 and "wharf monit needs a terminal" in piped.stderr


def test_monit_follows_the_selected_apps_logs_and_restarts_it(pane, two_apps):
    old = two_apps.row("hello")["pid"]
    monit(pane, two_apps)
    pane.keys("j")
    pane.wait_for("Logs: hello")
    pane.wait_for(f"hello from pid {old}")  # the history
    assert "no route sends to hello" in pane.screen()
    pane.keys("r")
    new = wait_until(lambda: (p := two_apps.row("hello")["pid"]) != old and p,
                     message="hello's new pid")
    screen = pane.wait_for(f"hello from pid {new}")  # followed: written after monit started
    pane.wait_for(f"hello restarted (pid {new})")
    assert str(new) in row_of(pane.screen(), "hello"), screen
    pane.keys("k")
    pane.wait_for("Logs: web")
    pane.keys("q")
    screen = pane.wait_for("monit exited with 0")
    assert "Processes" not in screen  # the terminal is given back


def test_monit_says_so_and_exits_1_when_the_daemon_goes(two_apps, tmp_path):
    small = Pane(tmp_path, 60, 12)  # a small terminal: the list is still there
    try:
        monit(small, two_apps)
        small.wait_for(str(two_apps.row("hello")["pid"]))
        assert two_apps.run("down").returncode == 0
        screen = small.wait_for("monit exited with 1")
        assert "the daemon went away while monit was running" in screen
        assert "Traceback" not in screen
    finally:
        small.close()


def test_monit_without_a_daemon_fails_as_status_does(wharf):
    wharf.write_config(f'[apps.web]\ncommand = ["{sys.executable}", "{APPS}/sleeper.py"]\n')
    status, monitor = wharf.run("status"), wharf.run("monit")
    assert monitor.returncode == status.returncode == 1
    assert monitor.stderr == status.stderr and "no Wharf daemon is running" in monitor.stderr


def test_neither_the_daemon_nor_the_cli_loads_rich():
    code = ("import sys, wharf.daemon.app, wharf.cli.main, wharf.cli.up; "
            "sys.exit('rich' in sys.modules)")
    assert subprocess.run([PY, "-c", code], check=False).returncode == 0
