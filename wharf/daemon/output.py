"""Where app output goes: its log files, the terminal in the foreground, and `logs -f` readers."""

from __future__ import annotations

from collections.abc import Callable

from wharf.config.model import AppConfig
from wharf.supervise.logrotate import Rotation
from wharf.supervise.logs import LogWriter, Sink

Follower = Callable[[str, bytes], None]


def rotation_of(app: AppConfig) -> Rotation:
    """How an app's log files rotate."""
    return Rotation(app.log_max_size, app.log_backups, app.log_rotate, app.log_max_total,
                    app.log_compress)


class OutputRouter:
    """Implements the supervisor's Output: fans each app's lines out to their destinations."""

    def __init__(self, writer: LogWriter, echo: Sink | None) -> None:
        self._writer = writer
        self._echo = echo
        self._sinks: dict[tuple[str, str], Sink] = {}
        self._followers: dict[str, list[Follower]] = {}

    def __repr__(self) -> str:
        return f"<OutputRouter sinks={len(self._sinks)} followers={len(self._followers)}>"

    def configure(self, app: AppConfig) -> None:
        """Point an app's streams at its (possibly new) log files."""
        assert app.stdout_log is not None and app.stderr_log is not None
        rotation = rotation_of(app)
        for stream, path in (("out", app.stdout_log), ("err", app.stderr_log)):
            old = self._sinks.get((app.name, stream))
            if old is None or old.path != path or old.rotation != rotation:
                self._sinks[(app.name, stream)] = Sink(path, rotation=rotation,
                                                       compressor=self._writer.compressor)
                if old is not None:
                    self._writer.retire(old)

    def remove(self, app: str) -> None:
        """An app is gone: close its log files once their queued lines are written."""
        for stream in ("out", "err"):
            sink = self._sinks.pop((app, stream), None)
            if sink is not None:
                self._writer.retire(sink)

    def write(self, app: str, stream: str, data: bytes) -> None:
        """Deliver whole lines of an app's `stream` ("out" or "err")."""
        sink = self._sinks.get((app, stream))
        if sink is not None:
            self._writer.write(sink, data)
        if self._echo is not None:
            self._writer.write(self._echo, data)
        for follower in self._followers.get(app, ()):
            follower(stream, data)

    def follow(self, app: str, follower: Follower) -> Callable[[], None]:
        """Send new lines of `app` to `follower` until the returned function is called."""
        self._followers.setdefault(app, []).append(follower)
        return lambda: self._followers.get(app, []).remove(follower)
