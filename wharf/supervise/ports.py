"""Ports for app instances: fixed (`port + i`) or taken from a range, stable across restarts."""

from __future__ import annotations

import random
import socket

from wharf.errors import SupervisorError


def port_is_free(port: int) -> bool:
    """True when nothing listens on `port` on any local address (we can bind it ourselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out one port per (app, instance) and remembers it until released."""

    def __init__(self, first: int, last: int) -> None:
        self._first = first
        self._last = last
        # Start anywhere in the range, as the kernel picks ephemeral ports: daemons of other
        # projects on the machine take from the same default range, and two that began at its
        # first port would hand out the same ports at the same moment (one app then cannot
        # bind, and the other daemon's instance answers for it).
        self._next = random.randint(first, last)
        self._owned: dict[tuple[str, int], int] = {}
        self.reserved: frozenset[int] = frozenset()  # fixed ports of apps: never handed out

    def __repr__(self) -> str:
        return f"<PortAllocator {self._first}-{self._last} in use={len(self._owned)}>"

    def port_for(self, app: str, instance: int, fixed: int | None) -> int:
        """The port of an instance: `fixed + instance` if the app sets one, else from the range."""
        if fixed is not None:
            return fixed + instance
        key = (app, instance)
        if key not in self._owned:
            self._owned[key] = self._take()
        return self._owned[key]

    def move(self, app: str, source: int, target: int) -> None:
        """Give the port held under `source` to `target` (a replacement took its place)."""
        if (app, source) in self._owned:
            self._owned[(app, target)] = self._owned.pop((app, source))

    def release(self, app: str, instance: int) -> None:
        """Give the port of an instance back (it was scaled away or its app removed)."""
        self._owned.pop((app, instance), None)

    def _take(self) -> int:
        used = set(self._owned.values()) | self.reserved
        size = self._last - self._first + 1
        for _ in range(size):
            port = self._next
            self._next = self._first if port == self._last else port + 1
            if port not in used and port_is_free(port):
                return port
        raise SupervisorError(f"no free port left in {self._first}-{self._last}",
                              hint="widen daemon.port_range")
