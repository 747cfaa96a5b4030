"""Sticky sessions by cookie: the proxy names the chosen backend in a cookie, and the next
requests carrying it go back there while it is in the pool; otherwise, round robin.

The key is the cookie's value: the backend's stable id (`backend_id`), the same in every worker.
"""

from __future__ import annotations

from wharf.proxy.balancers import backend_id
from wharf.proxy.balancers.round_robin import RoundRobin
from wharf.registry.snapshot import Backend


class StickyCookie:
    """Back to the backend the cookie names, if it can still take the request."""

    def __init__(self, backends: tuple[Backend, ...]) -> None:
        self._by_id = {backend_id(b).encode(): i for i, b in enumerate(backends)}
        self._fallback = RoundRobin(backends)

    def __repr__(self) -> str:
        return f"<StickyCookie backends={len(self._by_id)}>"

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int:
        """The pinned backend, or the next one in turn."""
        if key is not None:
            index = self._by_id.get(key, -1)
            if index >= 0 and (not avoid or index not in avoid):
                return index
        return self._fallback.pick(None, avoid)
