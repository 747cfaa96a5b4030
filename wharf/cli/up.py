"""`wharf up` (foreground or detached) and `wharf down`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from wharf.config.model import Config
from wharf.errors import ConfigError, ControlError

# How long `up -d` waits for the daemon to answer, and `down` for it to exit.
DETACH_TIMEOUT = 15.0
DOWN_TIMEOUT = 300.0


def up(config_path: Path, detach: bool, detached_child: bool) -> int:
    """Validate the config, then run the daemon here or in the background."""
    from wharf.config import default_state_dir, load_config
    from wharf.control.client import socket_path

    config = load_config(config_path)  # a bad file exits 2 before anything starts
    if not detached_child:  # the foreground `up -d` has said it
        from wharf.cli.output import print_warnings

        print_warnings(config)
    sock = socket_path(config.daemon.state_dir)
    # One started before state_dir was edited in answers in the default state dir.
    if _answers(sock) or _answers(socket_path(default_state_dir(config.path))):
        raise ControlError(f"a Wharf daemon already runs for {config.path}",
                           hint="see `wharf status`, or stop it with `wharf down`")
    if not detached_child:
        from wharf.config.proxy_checks import listen_problems

        _stop_leftovers(config)  # before the checks: they hold the ports the apps need
        problems = listen_problems(config.proxy, config.apps)
        if problems:
            raise ConfigError(str(config.path), problems)
    if detach:
        return _detach(config.path, config.daemon.state_dir, sock)
    import uvloop

    from wharf.daemon.app import Daemon
    from wharf.observability.log_setup import setup_logging

    setup_logging()
    daemon = Daemon(config, echo_output=not detached_child)
    uvloop.run(daemon.run())
    return 0


def _detach(config_path: Path, state_dir: Path, sock: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = state_dir / "daemon.log"
    with log_path.open("ab") as log_file:
        child = subprocess.Popen(
            [sys.executable, "-m", "wharf", "up", "-c", str(config_path), "--detached-child"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True)
    deadline = time.monotonic() + DETACH_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(sock):
            print(f"wharf: daemon started (pid {child.pid}); log: {log_path}")
            return _wait_started(sock)
        if child.poll() is not None:
            break
        time.sleep(0.02)
    tail = log_path.read_text(errors="replace").splitlines()[-15:]
    print("wharf: the daemon did not start:\n" + "\n".join(tail), file=sys.stderr)
    return 1


def _wait_started(sock: Path) -> int:
    """Wait until every app takes traffic or has failed; 1 naming each failure."""
    from wharf.cli.output import status_table
    from wharf.control.client import call

    print(status_table(call(sock, "wait")))
    return 0


def _stop_leftovers(config: Config) -> None:
    """Stop what a daemon of this config left running when it died without stopping its
    apps (kill -9), saying so; refuse if that daemon still runs but does not answer."""
    from wharf.daemon import leftovers

    daemon, left = leftovers.find(config.daemon.state_dir)
    if daemon is not None:
        raise ControlError(f"the daemon of {config.path} (pid {daemon.pid}) runs but does not "
                           "answer", hint=f"stop it (kill {daemon.pid}), then `wharf up` again")
    if not left:
        return
    names = ", ".join(f"{p.name} (pid {p.pid})" for p in left)
    print(f"wharf: the previous daemon ended without stopping its apps; stopping the "
          f"{len(left)} process(es) it left: {names}", file=sys.stderr)
    timeout = max((a.stop_timeout for a in config.apps.values()), default=10.0)
    leftovers.stop(left, timeout)


def down(config_path: Path) -> int:
    """Ask the daemon to stop every app and exit; wait until it has."""
    from wharf.control.client import call, daemon_socket

    sock = daemon_socket(config_path)
    pid = _read_pid(sock.parent / "wharf.pid")
    call(sock, "down")
    deadline = time.monotonic() + DOWN_TIMEOUT
    while pid is not None and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    print("wharf: stopped")
    return 0


def _answers(sock: Path) -> bool:
    from wharf.control.client import connect

    try:
        connect(sock, timeout=2.0).close()
    except ControlError:
        return False
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own detached child) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False
