"""Round robin: each backend in turn, weights ignored."""

from __future__ import annotations

from wharf.registry.snapshot import Backend


class RoundRobin:
    """Cycles through the backends in order."""

    def __init__(self, backends: tuple[Backend, ...]) -> None:
        self._count = len(backends)
        self._next = 0

    def __repr__(self) -> str:
        return f"<RoundRobin backends={self._count} next={self._next}>"

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int:
        """The next backend not to avoid, or -1."""
        count = self._count
        for _ in range(count):
            index = self._next % count
            self._next = index + 1
            if not avoid or index not in avoid:
                return index
        return -1
