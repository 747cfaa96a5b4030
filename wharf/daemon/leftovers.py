"""What a daemon has started, kept on disk, so that the next `up` can stop what a daemon that
died without stopping its apps (kill -9, OOM killer) left running.

The daemon rewrites `processes.json` in its state directory whenever a process starts or ends:
its own pid and each child's pid with the process's start time (so that a pid the kernel has
since given to another process is never taken for ours). `wharf up` reads it before starting
anything: if that daemon is gone, every recorded process still alive is one of its leftovers,
and is stopped (its whole process group: SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

FILE = "processes.json"
# Start times read twice from /proc agree to the clock tick; a reused pid differs by far more.
SAME_START = 0.05
POLL = 0.05


@dataclass(frozen=True, slots=True)
class Started:
    """A process a daemon started: `name` as in status (`web.0`), its pid and start time."""

    name: str
    pid: int
    started: float


def start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), None if there is none."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def is_alive(process: Started) -> bool:
    """True if the very process that was recorded still runs (not a zombie, not a reused pid)."""
    try:
        p = psutil.Process(process.pid)
        return abs(p.create_time() - process.started) < SAME_START and \
            p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Recorder:
    """Writes the daemon's children to `path`, atomically, each time it is asked to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._daemon = Started("daemon", os.getpid(), start_time(os.getpid()) or 0.0)
        self._times: dict[int, float] = {}

    def __repr__(self) -> str:
        return f"<Recorder {self.path} processes={len(self._times)}>"

    def write(self, children: Iterable[tuple[str, int]]) -> None:
        """Record `children`, (name, pid) pairs, as the daemon's processes now."""
        entries = []
        times: dict[int, float] = {}
        for name, pid in children:
            started = self._times.get(pid) or start_time(pid)
            if started is not None:
                times[pid] = started
                entries.append({"name": name, "pid": pid, "started": started})
        self._times = times
        data = {"daemon": {"pid": self._daemon.pid, "started": self._daemon.started},
                "processes": entries}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        """Nothing is left running: forget the file."""
        self.path.unlink(missing_ok=True)


def read(path: Path) -> tuple[Started | None, list[Started]]:
    """The recorded daemon and its processes; nothing for a missing or unreadable file."""
    try:
        data = json.loads(path.read_text())
        daemon = data["daemon"]
        return (Started("daemon", int(daemon["pid"]), float(daemon["started"])),
                [Started(str(p["name"]), int(p["pid"]), float(p["started"]))
                 for p in data["processes"]])
    except (OSError, ValueError, KeyError, TypeError):
        return None, []


def find(state_dir: Path) -> tuple[Started | None, list[Started]]:
    """The daemon recorded in `state_dir` if it still runs, and the recorded processes that
    still do."""
    daemon, processes = read(state_dir / FILE)
    alive = daemon if daemon is not None and is_alive(daemon) else None
    return alive, [p for p in processes if is_alive(p)]


def stop(processes: list[Started], timeout: float) -> None:
    """Stop each process's group: SIGTERM, and SIGKILL to those still there after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for process in processes:
            if is_alive(process):
                try:
                    os.killpg(process.pid, sig)
                except (ProcessLookupError, PermissionError):
                    try:
                        os.kill(process.pid, sig)
                    except OSError:
                        pass
        deadline = time.monotonic() + wait
        while any(is_alive(p) for p in processes) and time.monotonic() < deadline:
            time.sleep(POLL)
        processes = [p for p in processes if is_alive(p)]
        if not processes:
            return
