"""Rotated log files: numbered backups, capped in count and in total size, optionally gzipped.

Theory of operation: a log file `app.out.log` rotates when it would pass `log_max_size`, or
when the hour or day (local time) of its last write is over (`log_rotate`). The file it was
becomes backup 1 (`app.out.log.1`, or `.1.gz` once compressed) and the older ones move up one
number; the one past `log_backups` is deleted, and then the oldest ones until the backups
together take at most `log_max_total` bytes. So the disk a log takes is bounded by
max_size + max_total whatever the app writes (PM2's logs grow until the disk is full unless
pm2-logrotate is installed and configured: Unitech/pm2#1415).

Compression (`log_compress`) runs in a thread of its own: the writer thread only renames the
file aside (`app.out.log.<ns>.rotated`) and goes on writing; the compressor gzips it, then
shifts it in as backup 1. It works through rotated files in order, so the numbers stay in age
order; `close` finishes what is queued. Shifting takes a lock shared by both threads.
"""

from __future__ import annotations

import gzip
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_shift_lock = threading.Lock()
SUFFIXES = ("", ".gz")
COMPRESS_LEVEL = 6  # gzip's default: most of the ratio of 9 at a third of its time


@dataclass(frozen=True, slots=True)
class Rotation:
    """When a log file rotates and what is kept of it."""

    max_size: int = 0  # 0: not by size
    backups: int = 0  # 0: a rotated file is deleted
    every: str | None = None  # "hourly", "daily" or None
    max_total: int = 0  # bytes of all backups together; 0: no cap
    compress: bool = False


def period(now: float, every: str | None) -> tuple[int, ...]:
    """The hour or day (local time) `now` falls in; () when not rotating by time."""
    if every is None:
        return ()
    t = time.localtime(now)
    return (t.tm_year, t.tm_yday, t.tm_hour) if every == "hourly" else (t.tm_year, t.tm_yday)


def backup(path: Path, n: int, suffix: str = "") -> Path:
    """Backup number `n` of `path` (`app.out.log.3`, `app.out.log.3.gz`)."""
    return path.with_name(f"{path.name}.{n}{suffix}")


def backups_of(path: Path, count: int) -> list[Path]:
    """The backups of `path` that exist, newest first."""
    return [p for n in range(1, count + 1) for s in SUFFIXES if (p := backup(path, n, s)).exists()]


def shift_in(path: Path, rotated: Path, rotation: Rotation) -> None:
    """Make `rotated` backup 1 of `path`: move the others up (dropping the last), then delete
    the oldest while all of them take more than `max_total` bytes."""
    suffix = ".gz" if rotated.name.endswith(".gz") else ""
    with _shift_lock:
        for s in SUFFIXES:
            backup(path, rotation.backups, s).unlink(missing_ok=True)
        for n in range(rotation.backups - 1, 0, -1):
            for s in SUFFIXES:
                older = backup(path, n, s)
                if older.exists():
                    older.replace(backup(path, n + 1, s))
        rotated.replace(backup(path, 1, suffix))
        if rotation.max_total > 0:
            _cap_total(backups_of(path, rotation.backups), rotation.max_total)


def _cap_total(newest_first: list[Path], max_total: int) -> None:
    sizes = [p.stat().st_size for p in newest_first]
    while newest_first and sum(sizes) > max_total:
        newest_first.pop().unlink(missing_ok=True)
        sizes.pop()


def compress(source: Path) -> Path:
    """gzip `source` into `source.gz` (written aside, then renamed) and delete it."""
    target = source.with_name(source.name + ".gz")
    partial = source.with_name(source.name + ".gz.partial")
    with source.open("rb") as src, gzip.open(partial, "wb", compresslevel=COMPRESS_LEVEL) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    partial.replace(target)
    source.unlink()
    return target


def set_aside(path: Path) -> Path:
    """Rename a log file that is rotating out of the way, under a unique name."""
    aside = path.with_name(f"{path.name}.{time.time_ns()}.rotated")
    path.replace(aside)
    return aside


class Compressor:
    """The thread that gzips rotated files and shifts them in, one after the other."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Path, Path, Rotation] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, path: Path, aside: Path, rotation: Rotation) -> None:
        """Compress `aside` (set aside from `path`) and make it backup 1 of `path`."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wharf-gzip",
                                                daemon=True)
                self._thread.start()
        self._queue.put((path, aside, rotation))

    def close(self) -> None:
        """Finish what is queued and stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            path, aside, rotation = job
            try:
                shift_in(path, compress(aside), rotation)
            except OSError as exc:  # a full disk: keep the file uncompressed
                os.write(2, f"wharf: cannot compress {aside}: {exc.strerror}\n".encode())
                try:
                    shift_in(path, aside, rotation)
                except OSError:
                    pass  # it stays set aside, under its .rotated name
