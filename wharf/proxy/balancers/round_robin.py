"""Round robin: each backend in turn."""

from __future__ import annotations

from wharf.registry.snapshot import Backend


class RoundRobin:
    """Cycles through the backends in order."""

    def __init__(self, backends: tuple[Backend, ...]) -> None:
        self._backends = backends
        self._next = 0

    def __repr__(self) -> str:
        return f"<RoundRobin backends={len(self._backends)} next={self._next}>"

    def pick(self) -> Backend | None:
        """The next backend, or None if there is none."""
        if not self._backends:
            return None
        backend = self._backends[self._next % len(self._backends)]
        self._next += 1
        return backend
