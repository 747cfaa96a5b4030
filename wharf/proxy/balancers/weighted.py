"""Smooth weighted round robin, nginx's algorithm: weights 3:2:1 give a b a c b a, interleaved.

Each pick adds every backend's weight to its running score, takes the highest score, and
takes the total weight off the winner.
"""

from __future__ import annotations

from wharf.registry.snapshot import Backend


class SmoothWeighted:
    """Weighted round robin without bursts."""

    def __init__(self, backends: tuple[Backend, ...]) -> None:
        self._weights = [b.weight for b in backends]
        self._scores = [0] * len(backends)

    def __repr__(self) -> str:
        return f"<SmoothWeighted weights={self._weights} scores={self._scores}>"

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int:
        """The backend whose turn it is."""
        best = -1
        total = 0
        scores = self._scores
        for i in range(len(scores)):
            if avoid and i in avoid:
                continue
            scores[i] += self._weights[i]
            total += self._weights[i]
            if best < 0 or scores[i] > scores[best]:
                best = i
        if best >= 0:
            scores[best] -= total
        return best
