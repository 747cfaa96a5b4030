"""Balancers: one module per strategy, each choosing a backend for a request.

A balancer is plain code: it gets the backends (and, for load-aware strategies, their live
`Load`s, in the same order) when built, and answers `pick(key, avoid)` with the index of a
backend: `key` is what hashing strategies hash (the client address, a header, a cookie or the
URI; None when the request has none), `avoid` the indexes a retry must not use. It returns -1
only when no backend is left.

Hashing strategies hash with BLAKE2b, never Python's per-process `hash()`, so every worker
process sends the same key to the same backend.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Protocol

from wharf.registry.snapshot import Backend

NOTHING: Final[frozenset[int]] = frozenset()


@dataclass(slots=True, eq=False)  # compared and hashed by identity
class Load:
    """What a worker knows of one backend right now (shared by every balancer using it)."""

    inflight: int = 0
    ewma: float = 0.005  # peak-EWMA latency in seconds; a new backend is assumed fast-ish
    ewma_at: float = 0.0
    failures: int = 0  # consecutive connect errors or 5xx
    ejections: int = 0
    ejected_until: float = 0.0
    last_error: str = ""
    joined: float = 0.0  # when the backend entered this worker's pool, or came back to it


class Balancer(Protocol):
    """Chooses the backend of the next request."""

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int: ...


def stable_hash(data: bytes) -> int:
    """A 64-bit hash that is the same in every process."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def backend_id(backend: Backend) -> str:
    """A short, stable name of a backend (for sticky cookies)."""
    return hashlib.blake2b(f"{backend.host}:{backend.port}".encode(), digest_size=5).hexdigest()


KINDS: Final = ("round_robin", "weighted", "least_conn", "ip_hash", "hash", "cookie", "p2c", "ewma")


def make_balancer(kind: str, backends: tuple[Backend, ...], loads: list[Load]) -> Balancer:
    """The balancer named `kind` over `backends`."""
    from wharf.proxy.balancers.consistent_hash import ConsistentHash
    from wharf.proxy.balancers.least_conn import LeastConn
    from wharf.proxy.balancers.p2c import PowerOfTwo
    from wharf.proxy.balancers.peak_ewma import PeakEwma
    from wharf.proxy.balancers.round_robin import RoundRobin
    from wharf.proxy.balancers.sticky_cookie import StickyCookie
    from wharf.proxy.balancers.weighted import SmoothWeighted

    if kind == "round_robin":
        return RoundRobin(backends)
    if kind == "weighted":
        return SmoothWeighted(backends)
    if kind == "least_conn":
        return LeastConn(backends, loads)
    if kind in ("ip_hash", "hash"):
        return ConsistentHash(backends)
    if kind == "cookie":
        return StickyCookie(backends)
    if kind == "p2c":
        return PowerOfTwo(backends, loads)
    if kind == "ewma":
        return PeakEwma(backends, loads)
    raise ValueError(f"unknown balancer {kind!r}")
