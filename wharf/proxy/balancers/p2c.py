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
        self._random = (rng or random.Random()).random  # C-level, unlike sample()

    def __repr__(self) -> str:
        return f"<PowerOfTwo backends={len(self._backends)}>"

    def cost(self, i: int) -> float:
        """What choosing backend i costs: its in-flight requests for its weight."""
        return self._loads[i].inflight / self._backends[i].weight

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int:
        """The cheaper of two random backends not to avoid."""
        count = len(self._backends)
        if avoid:
            candidates = [i for i in range(count) if i not in avoid]
            if len(candidates) < 2:
                return candidates[0] if candidates else -1
            a = candidates[int(self._random() * len(candidates))]
            b = candidates[int(self._random() * (len(candidates) - 1))]
            b = candidates[-1] if b == a else b
        else:
            if count < 2:
                return count - 1
            a = int(self._random() * count)
            b = int(self._random() * (count - 1))
            b = b + 1 if b >= a else b
        return a if self.cost(a) <= self.cost(b) else b
