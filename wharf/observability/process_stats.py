"""CPU and memory of supervised instances, each its whole process tree, sampled with psutil.

An instance's figures are the sums over its tree (`procfs.process_tree`): gunicorn's workers
and whatever else the app started count, as the memory limit must see them. RSS is summed as
Superlance's memmon does with `-c`: pages a forked worker still shares with its parent count
once per process, so the sum errs on the high side, never hides a growing worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from wharf.observability.procfs import process_table, process_tree


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """One instance at one moment: CPU % since the previous sample, CPU seconds used so far
    (by the processes alive now) and resident memory, summed over its processes."""

    cpu_percent: float
    rss_bytes: int
    cpu_seconds: float = 0.0


class ProcessSampler:
    """Keeps a psutil handle per pid so that CPU % is measured between two samples."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self.samples: dict[int, ProcessSample] = {}

    def __repr__(self) -> str:
        return f"<ProcessSampler tracking={len(self._procs)}>"

    def sample(self, roots: list[int]) -> dict[int, ProcessSample]:
        """Sample the process tree of each main pid in `roots` now, keyed by that pid; forget
        processes that are gone. (A process first seen counts 0 % CPU until the next sample.)"""
        table = process_table()
        trees = {root: process_tree(root, table) for root in set(roots)}
        wanted = {pid for tree in trees.values() for pid in tree}
        for pid in list(self._procs):
            if pid not in wanted:
                del self._procs[pid]
        samples: dict[int, ProcessSample] = {}
        for root, tree in trees.items():
            measured = [m for m in map(self._measure, tree) if m is not None]
            if measured:
                samples[root] = ProcessSample(sum(m[0] for m in measured),
                                              sum(m[1] for m in measured),
                                              sum(m[2] for m in measured))
        self.samples = samples
        return samples

    def _measure(self, pid: int) -> tuple[float, int, float] | None:
        proc = self._procs.get(pid)
        try:
            if proc is None:
                proc = self._procs[pid] = psutil.Process(pid)
            with proc.oneshot():
                times = proc.cpu_times()
                return proc.cpu_percent(None), proc.memory_info().rss, times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            self._procs.pop(pid, None)
            return None
