"""Fixtures that run a real Wharf daemon, with real apps, in a temporary directory."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

APPS = Path(__file__).parent / "apps"
PY = sys.executable


def wait_until(predicate: Callable[[], object], timeout: float = 10.0,
               message: str = "condition") -> object:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def pid_alive(pid: int) -> bool:
    """True if `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


class Wharf:
    """A project directory with a wharf.toml, and the daemon running it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = root / "wharf.toml"
        self.daemon: subprocess.Popen[bytes] | None = None
        self.daemon_log = root / "daemon-foreground.log"
        self.seen_pids: set[int] = set()

    def write_config(self, text: str) -> None:
        """Write wharf.toml; `{py}` and `{apps}` are replaced by the interpreter and apps dir."""
        text = textwrap.dedent(text).replace("{py}", PY).replace("{apps}", str(APPS))
        self.config.write_text(text)

    def run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run `wharf -c wharf.toml ARGS`; return the finished process. If it overruns
        `timeout` (an `up` that should have refused its config, say), it and every process it
        started are killed before the error is raised."""
        with subprocess.Popen([PY, "-m", "wharf", "-c", str(self.config), *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(psutil.Error):
                    for child in psutil.Process(proc.pid).children(recursive=True):
                        child.kill()
                proc.kill()
                proc.communicate()
                raise
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def up(self, preexec: Callable[[], None] | None = None) -> None:
        """Start the daemon in the foreground (as a child of the test) and wait for it."""
        log = self.daemon_log.open("ab")
        self.daemon = subprocess.Popen([PY, "-m", "wharf", "up", "-c", str(self.config)],
                                       stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                       preexec_fn=preexec)
        log.close()
        self.wait_answering()

    def wait_answering(self) -> None:
        """Wait until the daemon just started has its control socket and answers `status`."""
        assert self.daemon is not None
        daemon = self.daemon
        wait_until(lambda: daemon.poll() is not None or (self.root / ".wharf" /
                                                         "wharf.sock").exists(),
                   message="the control socket")
        assert daemon.poll() is None, self.daemon_log.read_text()
        wait_until(lambda: self.run("status").returncode == 0, message="an answering daemon")

    def status(self) -> list[dict]:
        """The instance rows of `wharf status --json`; remembers every pid seen, for cleanup."""
        return [r for r in self.status_json() if r["kind"] == "instance"]

    def backends(self) -> list[dict]:
        """The backend rows of `wharf status --json`."""
        return [r for r in self.status_json() if r["kind"] == "backend"]

    def status_json(self) -> list[dict]:
        """`wharf status --json`, parsed."""
        result = self.run("status", "--json")
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        self.seen_pids.update(r["pid"] for r in rows if r.get("pid"))
        return rows

    def instances(self, app: str) -> list[dict]:
        """The status rows of an app's instances."""
        return [r for r in self.status() if r["app"] == app]

    def wait_ready(self, app: str, count: int) -> None:
        """Wait until `count` instances of `app` are running and ready for traffic."""
        wait_until(lambda: len([i for i in self.instances(app) if i["ready"]]) == count,
                   message=f"{count} ready instances of {app}")

    def row(self, app: str, instance: int = 0) -> dict:
        """The status row of one instance."""
        return next(r for r in self.status() if r["app"] == app and r["instance"] == instance)

    def wait_state(self, app: str, state: str, instance: int = 0, timeout: float = 10.0) -> dict:
        """Wait until an instance reaches `state`; return its row."""
        return wait_until(lambda: (r := self.row(app, instance))["state"] == state and r,
                          timeout, f"{app}.{instance} to be {state}")  # type: ignore[return-value]

    def close(self) -> None:
        """Stop the daemon and make sure no process it started survives."""
        if self.daemon is not None and self.daemon.poll() is None:
            with contextlib.suppress(Exception):  # only to learn pids; never block the stop
                self.status()
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        for pid in self.seen_pids:
            if pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def wharf(tmp_path: Path) -> Iterator[Wharf]:
    """A Wharf project in a temp dir; its daemon is stopped and its processes reaped after."""
    w = Wharf(tmp_path)
    try:
        yield w
    finally:
        w.close()


# Shared fixtures: the session-scoped Pebble (ACME test CA) for the HTTPS tests and etcd for
# discovery, the module-scoped daemon with the admin listener, and the module-scoped proxy.
from tests.integration.admin_fixture import admin  # noqa: E402, F401
from tests.integration.etcd_server import etcd, etcd_prefix  # noqa: E402, F401
from tests.integration.pebble import pebble  # noqa: E402, F401
from tests.integration.proxy_fixture import proxy  # noqa: E402, F401
