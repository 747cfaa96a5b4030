"""CPU and memory of supervised processes, sampled with psutil."""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class ProcessSample:
    """One process at one moment: CPU % since the previous sample, and resident memory."""

    cpu_percent: float
    rss_bytes: int


class ProcessSampler:
    """Keeps a psutil handle per pid so that CPU % is measured between two samples."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self.samples: dict[int, ProcessSample] = {}

    def __repr__(self) -> str:
        return f"<ProcessSampler tracking={len(self._procs)}>"

    def sample(self, pids: list[int]) -> dict[int, ProcessSample]:
        """Sample `pids` now; forget pids that are gone."""
        wanted = set(pids)
        for pid in list(self._procs):
            if pid not in wanted:
                del self._procs[pid]
        samples: dict[int, ProcessSample] = {}
        for pid in wanted:
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    samples[pid] = ProcessSample(proc.cpu_percent(None), proc.memory_info().rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
        self.samples = samples
        return samples
