"""Least connections: the backend with the fewest requests in flight for its weight.

Ties are broken by scanning from a rotating start, so equal backends share the load evenly
instead of the first one taking every tie.
"""

from __future__ import annotations

from wharf.proxy.balancers import Load
from wharf.registry.snapshot import Backend


class LeastConn:
    """Fewest in-flight requests per unit of weight."""

    def __init__(self, backends: tuple[Backend, ...], loads: list[Load]) -> None:
        self._backends = backends
        self._loads = loads
        self._start = 0

    def __repr__(self) -> str:
        return f"<LeastConn inflight={[load.inflight for load in self._loads]}>"

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int:
        """The least loaded backend not to avoid."""
        count = len(self._backends)
        if not count:
            return -1
        self._start = (self._start + 1) % count
        best = -1
        best_cost = 0.0
        for step in range(count):
            i = (self._start + step) % count
            if avoid and i in avoid:
                continue
            cost = self._loads[i].inflight / self._backends[i].weight
            if best < 0 or cost < best_cost:
                best, best_cost = i, cost
        return best
