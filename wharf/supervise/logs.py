"""Capture of app output: split into timestamped lines, written to rotated files by one thread.

Theory of operation: the event loop reads a pipe as soon as it is readable (so an app never
blocks on a full pipe), cuts the bytes into lines with a `LineSplitter`, and hands them to the
`LogWriter`, whose thread does every file write. If the disk cannot keep up, a sink buffers up to
MAX_PENDING bytes and then drops lines, counting them, and writes a marker when it catches up:
the app and the daemon never wait for the disk.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from wharf.supervise.logrotate import Compressor, Rotation, compress, period, set_aside, shift_in

# An app that writes without newlines still gets its output logged in pieces of this size.
MAX_LINE = 16 * 1024
# What one sink may hold in memory while the disk is slow (supervisord buffers nothing and
# blocks instead; journald drops beyond its rate limit).
MAX_PENDING = 8 * 1024 * 1024


class Clock:
    """Formats wall-clock timestamps for log lines, reusing the text of the current second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def stamp(self, now: float | None = None) -> bytes:
        """`2026-11-28 07:01:02.345 ` for `now` (default: the current time)."""
        now = time.time() if now is None else now
        second = int(now)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._text}.{int((now - second) * 1000):03d} ".encode()


class LineSplitter:
    """Cuts a byte stream into lines, each prefixed with a timestamp and a label."""

    def __init__(self, label: str, clock: Clock) -> None:
        self._label = f"{label} | ".encode()
        self._clock = clock
        self._partial = b""

    def feed(self, data: bytes) -> bytes:
        """Return the complete, prefixed lines in `partial + data`; keep the rest."""
        data = self._partial + data
        end = data.rfind(b"\n") + 1
        if end == 0 and len(data) < MAX_LINE:
            self._partial = data
            return b""
        if end == 0:
            end = len(data)
        self._partial = data[end:]
        lines = data[:end].splitlines()
        prefix = self._clock.stamp() + self._label
        return b"".join(prefix + line + b"\n" for line in lines)

    def flush(self) -> bytes:
        """Return what is left as a final line (at end of stream)."""
        if not self._partial:
            return b""
        rest, self._partial = self._partial, b""
        return self._clock.stamp() + self._label + rest + b"\n"


class Sink:
    """A destination for log bytes: a file rotated by size and time (see `logrotate`), or an
    inherited descriptor. Without a `compressor`, rotated files are compressed inline."""

    def __init__(self, path: Path | None = None, max_size: int = 0, backups: int = 0,
                 fd: int | None = None, rotation: Rotation | None = None,
                 compressor: Compressor | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.path = path
        self.rotation = rotation or Rotation(max_size, backups)
        self.max_size = self.rotation.max_size
        self.backups = self.rotation.backups
        self._compressor = compressor
        self._now = now
        self._period: tuple[int, ...] = ()
        self._fd = fd
        self._size = 0
        self._lock = threading.Lock()
        self.pending = 0
        self.dropped = 0

    def __repr__(self) -> str:
        return f"<Sink {self.path or self._fd} pending={self.pending} dropped={self.dropped}>"

    # Called from the writer thread only.
    def write(self, data: bytes) -> None:
        """Append `data`, rotating at line boundaries so no file grows past `max_size`."""
        if self._fd is None:
            self._open()
        if self.rotation.every is not None and self.path is not None:
            current = period(self._now(), self.rotation.every)
            if current != self._period:
                if self._size > 0:
                    self._rotate()
                self._period = current
        rotating = self.path is not None and self.max_size > 0
        while data:
            room = self.max_size - self._size if rotating else len(data)
            if len(data) <= room:
                self._write_all(data)
                return
            cut = data.rfind(b"\n", 0, max(room, 0)) + 1
            if cut == 0 and self._size > 0:
                self._rotate()
                continue
            if cut == 0:  # one line longer than max_size: it gets a file of its own
                cut = data.find(b"\n") + 1 or len(data)
            self._write_all(data[:cut])
            data = data[cut:]
            if data:
                self._rotate()

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)

    def close(self) -> None:
        """Close the file (a later write reopens it)."""
        if self.path is not None and self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _open(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                           0o640)
        stat = os.fstat(self._fd)
        self._size = stat.st_size
        # A file written in an earlier hour or day rotates at its first write in this one.
        self._period = period(stat.st_mtime if self._size else self._now(), self.rotation.every)

    def _rotate(self) -> None:
        assert self.path is not None
        self.close()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        elif not self.rotation.compress:
            shift_in(self.path, set_aside(self.path), self.rotation)
        elif self._compressor is not None:
            self._compressor.submit(self.path, set_aside(self.path), self.rotation)
        else:
            shift_in(self.path, compress(set_aside(self.path)), self.rotation)
        self._open()


class LogWriter:
    """The one thread that writes every sink, in batches."""

    def __init__(self) -> None:
        # (sink, data), (sink, None) to close a sink no longer used, or None to stop.
        self._queue: queue.SimpleQueue[tuple[Sink, bytes | None] | None] = queue.SimpleQueue()
        self.compressor = Compressor()  # for the sinks with log_compress
        self._thread = threading.Thread(target=self._run, name="wharf-logs", daemon=True)
        self._thread.start()

    def write(self, sink: Sink, data: bytes) -> None:
        """Queue `data` for `sink`; drop it (and count it) if the sink is too far behind."""
        with sink._lock:
            if sink.pending + len(data) > MAX_PENDING:
                sink.dropped += len(data)
                return
            sink.pending += len(data)
        self._queue.put((sink, data))

    def retire(self, sink: Sink) -> None:
        """Close `sink` once what is queued for it is written (its app's logs moved or it
        was removed)."""
        self._queue.put((sink, None))

    def close(self) -> None:
        """Write what is queued, close the files and stop the thread."""
        self._queue.put(None)
        self._thread.join()
        self.compressor.close()

    def _run(self) -> None:
        sinks: set[Sink] = set()
        while True:
            item = self._queue.get()
            batch: dict[Sink, list[bytes]] = {}
            retired: list[Sink] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                elif item[1] is None:
                    retired.append(item[0])
                else:
                    batch.setdefault(item[0], []).append(item[1])
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            for sink, parts in batch.items():
                sinks.add(sink)
                self._write_batch(sink, b"".join(parts))
            for sink in retired:
                sink.close()
                sinks.discard(sink)
            if stop:
                for sink in sinks:
                    sink.close()
                return

    @staticmethod
    def _write_batch(sink: Sink, data: bytes) -> None:
        with sink._lock:
            sink.pending -= len(data)
            dropped, sink.dropped = sink.dropped, 0
        if dropped:
            data = f"[wharf] {dropped} bytes of output dropped: the log disk was too slow\n" \
                .encode() + data
        try:
            sink.write(data)
        except OSError as exc:
            # A full or broken disk must not kill the writer: count the loss and go on.
            with sink._lock:
                sink.dropped += len(data)
            sink.close()
            _report_write_error(sink, exc)


_reported: set[str] = set()


def _report_write_error(sink: Sink, exc: OSError) -> None:
    key = f"{sink.path}:{exc.errno}"
    if key not in _reported:
        _reported.add(key)
        os.write(2, f"wharf: cannot write log {sink.path}: {exc.strerror}\n".encode())


def read_tail(path: Path, lines: int) -> list[bytes]:
    """The last `lines` lines of a file, without reading the whole of a large one."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            end = f.tell()
            block, data = 8192, b""
            while end > 0 and data.count(b"\n") <= lines:
                step = min(block, end)
                end -= step
                f.seek(end)
                data = f.read(step) + data
                block *= 2
    except FileNotFoundError:
        return []
    return list(deque(data.splitlines(keepends=True), maxlen=lines))


def has_output(paths: list[Path]) -> bool:
    """True if any of these log files (or a rotated copy) holds a byte."""
    for path in paths:
        for candidate in (path, path.with_name(f"{path.name}.1"),
                          path.with_name(f"{path.name}.1.gz")):
            try:
                if candidate.stat().st_size > 0:
                    return True
            except FileNotFoundError:
                continue
    return False
