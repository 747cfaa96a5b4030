"""`wharf monit`: the live full-screen monitor's main loop (terminal, keys, screen).

The main thread owns the terminal and the Monitor: it waits on the keyboard and on a wake-up
pipe that the daemon-facing threads (`feeds.py`) write to after posting news to a queue, so a
key, a log line or a status answer is drawn at once, and the screen is redrawn at least once a
second anyway. The terminal is put in cbreak mode and on the alternate screen, and given back as
it was on every way out (q, Ctrl-C, the daemon going away).
"""

from __future__ import annotations

import os
import queue
import select
import signal
import socket
import sys
import termios
import threading
import time
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.live import Live

from wharf.cli.monit.feeds import (
    Gone,
    LogFollower,
    News,
    Notice,
    Output,
    Status,
    poll_status,
    restart,
    start_thread,
)
from wharf.cli.monit.model import Key, Monitor, decode_keys
from wharf.cli.monit.view import render
from wharf.control.client import call, daemon_socket
from wharf.errors import UsageError

# The screen is redrawn this often even when nothing was posted (uptimes move).
REDRAW_INTERVAL = 1.0
# ... and at most this often when news pours in (a flood of log lines must not eat a core).
FRAME_INTERVAL = 0.1


def monit(config_path: Path) -> int:
    """Run the monitor until `q`; return the exit code (ControlError if the daemon goes)."""
    path = daemon_socket(config_path)
    first = call(path, "status", {})  # no daemon: the same error and exit code as `status`
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("wharf monit needs a terminal",
                         hint="in a script, use `wharf status --json` or `wharf logs -f APP`")
    loop = MonitLoop(path)
    loop.take(Status(first))
    with cbreak(sys.stdin.fileno()), loop.wake_on_resize():
        return loop.run()


@contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """Keys arrive one by one, unechoed; the terminal's mode is restored after."""
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class MonitLoop:
    """The monitor's state, the news queue, and the threads that feed it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.monitor = Monitor()
        self.news: queue.SimpleQueue[News] = queue.SimpleQueue()
        # A socket pair, not a pipe: a feed thread waking a loop that has ended gets an
        # OSError from the closed socket object, never a write to a reused descriptor.
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_w.setblocking(False)
        self.follower: LogFollower | None = None
        self.gone: Gone | None = None

    def post(self, news: News) -> None:
        """Called by the feed threads: queue the news and wake the main loop."""
        self.news.put(news)
        self._wake()

    def _wake(self) -> None:
        try:
            self.wake_w.send(b"!")
        except OSError:  # full: the loop is awake already; closed: it has ended
            pass

    @contextmanager
    def wake_on_resize(self) -> Iterator[None]:
        """Redraw at once when the terminal is resized."""
        def on_resize(signum: int, frame: FrameType | None) -> None:
            self._wake()
        previous = signal.signal(signal.SIGWINCH, on_resize)
        try:
            yield
        finally:
            signal.signal(signal.SIGWINCH, previous)

    def run(self) -> int:
        """Draw, read keys and news, until `q` or the daemon goes."""
        stop = threading.Event()
        start_thread(poll_status, self.path, self.post, stop)
        console = Console()
        try:
            with Live(console=console, screen=True, auto_refresh=False,
                      redirect_stdout=False, redirect_stderr=False) as live:
                drawn, dirty = -REDRAW_INTERVAL, True
                while self.gone is None:
                    dirty = self._drain() or dirty
                    now = time.monotonic()
                    since = now - drawn
                    if (dirty and since >= FRAME_INTERVAL) or since >= REDRAW_INTERVAL:
                        # The terminal's size now: not COLUMNS/LINES from the environment
                        # (rich would take those, and they do not follow a resize).
                        console.size = os.get_terminal_size(sys.stdout.fileno())
                        live.update(render(self.monitor, *console.size), refresh=True)
                        drawn, dirty, since = now, False, 0.0
                    wait = (FRAME_INTERVAL if dirty else REDRAW_INTERVAL) - since
                    ready, _, _ = select.select([sys.stdin.fileno(), self.wake_r], [], [],
                                                max(wait, 0.0))
                    if self.wake_r in ready:  # news, or a resize
                        self.wake_r.recv(4096)
                        dirty = True
                    if sys.stdin.fileno() in ready:
                        if not self._keys(decode_keys(os.read(sys.stdin.fileno(), 1024))):
                            return 0
                        dirty = True
        finally:
            stop.set()
            if self.follower is not None:
                self.follower.stop()
            self.wake_r.close()
            self.wake_w.close()
        raise self.gone.error

    def _drain(self) -> bool:
        """Apply every queued news; True if there was any."""
        any_news = False
        while True:
            try:
                news = self.news.get_nowait()
            except queue.Empty:
                return any_news
            any_news = True
            self.take(news)

    def take(self, news: News) -> None:
        """Apply one piece of news to the monitor."""
        monitor = self.monitor
        if isinstance(news, Status):
            monitor.rates.take(news.traffic, news.at)
            if monitor.set_status(news.rows):
                self._follow()
        elif isinstance(news, Output):
            if news.follower is self.follower:
                if news.stream == "note":
                    monitor.logs.note(news.data)
                else:
                    monitor.logs.add(news.stream, news.data)
        elif isinstance(news, Notice):
            monitor.message = news.text
            if news.restart_done:
                monitor.restarting = None
        elif isinstance(news, Gone):
            self.gone = news

    def _keys(self, keys: list[Key]) -> bool:
        """Act on keys; False to quit."""
        monitor = self.monitor
        for key in keys:
            if key is Key.QUIT:
                return False
            if key is Key.RESTART and monitor.selected is not None:
                if monitor.restarting is not None:
                    monitor.message = f"a restart of {monitor.restarting} is under way"
                else:
                    monitor.restarting = monitor.selected
                    monitor.message = f"restarting {monitor.selected}..."
                    start_thread(restart, self.path, monitor.selected, self.post)
            elif key is not Key.RESTART and monitor.move(key):
                self._follow()
        return True

    def _follow(self) -> None:
        """Follow the selected app's logs instead of the previous one's."""
        if self.follower is not None:
            self.follower.stop()
        app = self.monitor.selected
        self.follower = LogFollower(self.path, app, self.post) if app is not None else None
