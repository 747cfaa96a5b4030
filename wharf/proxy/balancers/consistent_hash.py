"""Consistent hashing (ip_hash and hash): the same key goes to the same backend, and removing
one of N backends moves only about 1/N of the keys.

Each backend owns VNODES points per unit of weight on a 64-bit ring; a key goes to the first
point at or after its hash. A request without a key is spread round robin. The ring holds at
most MAX_POINTS points (ketama's 160 per backend up to 1,000 backends of weight 1): beyond,
each unit of weight gets fewer (16 each at 10,000 backends), since 1.6 million points took 20 s
to build. Then a change of the backend set moves up to 1/points more keys than the ideal 1/N.
A backend ejected by passive health is taken out of the built ring (`without`): it is not
built again, and only the ejected backend's keys move.
"""

from __future__ import annotations

import bisect

from wharf.proxy.balancers import stable_hash
from wharf.registry.snapshot import Backend

VNODES = 160  # ketama's figure: enough points for an even spread over a few dozen backends
MAX_POINTS = 160_000
# Keys seen recently, with their owner: clients and URIs repeat, and a dict lookup is much
# cheaper than hashing. Cleared when full (the ring is rebuilt with any change anyway).
CACHE_SIZE = 4096


class ConsistentHash:
    """A hash ring over the backends."""

    def __init__(self, backends: tuple[Backend, ...],
                 ring: tuple[list[int], list[int]] | None = None) -> None:
        if ring is None:
            per_weight = max(1, min(VNODES, MAX_POINTS // max(1, sum(b.weight for b in backends))))
            points = sorted(
                (stable_hash(f"{b.host}:{b.port}#{i}".encode()), index)
                for index, b in enumerate(backends) for i in range(per_weight * b.weight))
            ring = [h for h, _ in points], [index for _, index in points]
        self._hashes, self._owners = ring
        self._backends = backends
        self._next = 0
        self._cache: dict[bytes, int] = {}

    def without(self, keep: list[int]) -> ConsistentHash:
        """This ring over only the backends at the indexes `keep` (ascending), which become
        0, 1, ...: the others' points are taken out, nothing is hashed or sorted again."""
        renumbered = [-1] * len(self._backends)
        for new, old in enumerate(keep):
            renumbered[old] = new
        hashes, owners = [], []
        for point, owner in zip(self._hashes, self._owners, strict=True):
            if renumbered[owner] >= 0:
                hashes.append(point)
                owners.append(renumbered[owner])
        return ConsistentHash(tuple(self._backends[i] for i in keep), (hashes, owners))

    def __repr__(self) -> str:
        return f"<ConsistentHash backends={len(self._backends)} points={len(self._hashes)}>"

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int:
        """The owner of the key's point (or the next owner not to avoid)."""
        if not self._hashes:
            return -1
        if key is None:
            self._next += 1
            start = self._next % len(self._hashes)
        else:
            if not avoid:
                owner = self._cache.get(key, -1)
                if owner >= 0:
                    return owner
            start = bisect.bisect_left(self._hashes, stable_hash(key)) % len(self._hashes)
            if not avoid:
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
                owner = self._owners[start]
                self._cache[key] = owner
                return owner
        owners = self._owners
        for step in range(len(owners)):
            owner = owners[(start + step) % len(owners)]
            if not avoid or owner not in avoid:
                return owner
        return -1
