"""The threads of `wharf monit` that talk to the daemon, each through the control client as any
other command does: a status poller, a follower of one app's logs, a restart. Each posts what it
learns as a `News` value to a callback (the main loop's queue); none touches the screen."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wharf.control.client import RemoteError, call, connect, exchange
from wharf.errors import ControlError

# How often the status is asked for: the screen is then never more than a second old.
POLL_INTERVAL = 0.5
# The status answer normally takes a millisecond; past this the daemon is said not to answer.
STATUS_TIMEOUT = 5.0
# Lines of history asked for when an app is selected: more than a terminal is tall.
LOG_HISTORY = 200


@dataclass(frozen=True, slots=True)
class Status:
    """A status answer: instance rows, then backend rows; and the traffic totals (`wharf
    traffic`), when the daemon counts traffic (with `[admin]` on)."""

    rows: list[dict[str, Any]]
    traffic: dict[str, Any] | None = None
    at: float = 0.0  # time.monotonic() of the answer


@dataclass(frozen=True, slots=True)
class Gone:
    """The daemon cannot be reached any more: the monitor ends, exit 1."""

    error: ControlError


@dataclass(frozen=True, slots=True)
class Notice:
    """A line for the footer (the daemon is slow, a restart's result)."""

    text: str
    restart_done: bool = False


@dataclass(frozen=True, slots=True)
class Output:
    """Output of the app a follower follows; `stream` is out, err, or note (Wharf's own)."""

    follower: LogFollower
    stream: str
    data: str


News = Status | Gone | Notice | Output
Post = Callable[[News], None]


def went_away(exc: OSError | ControlError) -> ControlError:
    """The error that ends the monitor when the daemon goes while it runs."""
    what = exc.message if isinstance(exc, ControlError) else (exc.strerror or str(exc))
    return ControlError(f"the daemon went away while monit was running: {what}",
                        hint="see its log in the state directory; start it with `wharf up -d`")


def poll_status(path: Path, post: Post, stop: threading.Event) -> None:
    """Post the status every POLL_INTERVAL until `stop`; post Gone and end if the daemon is."""
    slow = False
    while not stop.is_set():
        try:
            rows = call(path, "status", {}, timeout=STATUS_TIMEOUT)
            post(Status(rows, call(path, "traffic", {}, timeout=STATUS_TIMEOUT),
                        time.monotonic()))
            if slow:
                post(Notice("the daemon answers again"))
            slow = False
        except TimeoutError:
            slow = True
            post(Notice(f"the daemon has not answered for {STATUS_TIMEOUT:.0f}s"))
        except RemoteError as exc:
            post(Notice(f"status: {exc.message}"))
        except (ControlError, OSError) as exc:
            post(Gone(went_away(exc)))
            return
        stop.wait(POLL_INTERVAL)


def restart(path: Path, app: str, post: Post) -> None:
    """Restart `app` as `wharf restart APP` does; post the result."""
    try:
        rows = call(path, "restart", {"app": app, "timeout": 60.0})
        pids = ", ".join(str(r["pid"]) for r in rows if r.get("app") == app and r.get("pid"))
        post(Notice(f"{app} restarted (pid {pids or '-'})", restart_done=True))
    except RemoteError as exc:
        post(Notice(f"restart {app} failed: {exc.message}", restart_done=True))
    except (ControlError, OSError) as exc:
        post(Notice(f"restart {app}: {went_away(exc).message}", restart_done=True))


def start_thread(target: Callable[..., None], *args: Any) -> threading.Thread:
    """A daemon thread (never keeps the CLI alive after the screen is gone), started."""
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


class LogFollower:
    """Follows one app's logs as `wharf logs -f APP` does, until `stop`: the history first,
    then new lines. Stopping shuts the socket down, which ends the daemon's side too."""

    def __init__(self, path: Path, app: str, post: Post) -> None:
        self.app = app
        self._path = path
        self._post = post
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stopped = False
        start_thread(self._run)

    def _run(self) -> None:
        try:
            sock = connect(self._path)
            with self._lock:
                if self._stopped:
                    sock.close()
                    return
                self._sock = sock
            with sock:
                sock.settimeout(None)
                args = {"app": self.app, "lines": LOG_HISTORY, "follow": True}
                for message in exchange(sock, "logs", args):
                    if "stream" in message:
                        self._post(Output(self, message["stream"], message["data"]))
        except RemoteError as exc:  # the app never started, or wrote nothing and failed
            self._post(Output(self, "note", str(exc)))
        except (ControlError, OSError) as exc:
            if not self._stopped:
                ended = went_away(exc).message
                self._post(Output(self, "note", f"(the log stream ended: {ended})"))

    def stop(self) -> None:
        """End the follow; nothing more is posted that the caller must take."""
        with self._lock:
            self._stopped = True
            sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
