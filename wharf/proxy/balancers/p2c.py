"""Power of two random choices: of two backends drawn at random, the less loaded (in-flight
requests per unit of weight). Nearly as good as least connections, without its herding."""

from __future__ import annotations

import random

from wharf.proxy.balancers import Load
from wharf.registry.snapshot import Backend


class PowerOfTwo:
    """Two random candidates; the lighter wins."""

    def __init__(self, backends: tuple[Backend, ...], loads: list[Load],
                 rng: random.Random | None = None) -> None:
        self._backends = backends
        self._loads = loads
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"<PowerOfTwo backends={len(self._backends)}>"

    def cost(self, i: int) -> float:
        """What choosing backend i costs: its in-flight requests for its weight."""
        return self._loads[i].inflight / self._backends[i].weight

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int:
        """The cheaper of two random backends not to avoid."""
        count = len(self._backends)
        candidates = [i for i in range(count) if i not in avoid] if avoid else list(range(count))
        if len(candidates) < 2:
            return candidates[0] if candidates else -1
        a, b = self._rng.sample(candidates, 2)
        return a if self.cost(a) <= self.cost(b) else b
