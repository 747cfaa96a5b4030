"""Services as a worker serves them: live backends, their loads and pools, the balancer, the
requests queued for a free backend, the retry budget, passive health and rate limits.

Theory of operation: a service keeps three lists in one order - backends, loads, pools - and
its balancer answers with an index into them. Passive health (consecutive connect errors or
5xx) ejects a backend for a cool-down that doubles on each ejection (Envoy's outlier
detection); ejecting or readmitting rebuilds the balancer over the remaining backends, so a
pick never checks health. The last live backend is never ejected. `slow_start` gives a backend
that joins (a new instance) or is readmitted a small share of its weight, raised to the full
weight over that many seconds: weights are scaled by RAMP_SCALE meanwhile, so even backends of
weight 1 ramp smoothly, and round robin balances by those weights until every ramp is over.
The hashing strategies do not ramp (it would move keys twice), as in nginx.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Final, Protocol

from wharf.proxy.balancers import Balancer, Load, backend_id, make_balancer
from wharf.proxy.balancers.consistent_hash import ConsistentHash
from wharf.proxy.pool import Pool
from wharf.registry.snapshot import Backend, Service

KEY_NONE: Final = 0
KEY_IP: Final = 1
KEY_HEADER: Final = 2
KEY_COOKIE: Final = 3
KEY_URI: Final = 4
# Retries may add this many requests at the start, before the budget has earned any.
RETRY_BUDGET_FLOOR: Final = 10.0
RETRY_BUDGET_CAP: Final = 100.0
MAX_EJECTION_DOUBLINGS: Final = 5  # a cool-down grows to at most 32 times `ejection`
RAMP_SCALE: Final = 64  # weight units per unit of configured weight while some backend ramps
RAMPS: Final = frozenset({"round_robin", "weighted", "least_conn", "p2c", "ewma"})
HASHES: Final = frozenset({"ip_hash", "hash"})


class Waiting(Protocol):
    """A request queued for a free backend (the exchange: it names this as a base)."""

    __slots__ = ()

    done: bool  # answered or abandoned meanwhile: skipped

    def dequeued(self) -> None:
        """A backend slot is free for it."""

    def wait_on(self, svc: ServiceState) -> None:
        """A new snapshot's state of its service holds the queue now."""


class ServiceState:
    """One service in one worker."""

    def __init__(self, service: Service, loads: list[Load], pools: list[Pool],
                 now: float, previous: ServiceState | None = None) -> None:
        self.service = service
        self.all_backends = service.backends
        self.all_loads = loads
        self.all_pools = pools
        self.all_ids = [backend_id(b).encode() for b in service.backends]  # for sticky cookies
        self.queue: deque[Waiting] = deque()
        self.budget = RETRY_BUDGET_FLOOR
        kind = service.balance
        name = b""
        if kind == "ip_hash":
            self.key_kind = KEY_IP
        elif kind == "cookie":
            self.key_kind, name = KEY_COOKIE, service.cookie.encode()
        elif kind == "hash" and service.hash_key != "uri":
            source, _, header = service.hash_key.partition(":")
            self.key_kind = KEY_HEADER if source == "header" else KEY_COOKIE
            name = header.lower().encode() if source == "header" else header.encode()
        else:
            self.key_kind = KEY_URI if kind == "hash" else KEY_NONE
        self.key_name = name
        self.sticky = kind == "cookie"  # pins a client with a cookie (not `hash` on one)
        self.measures_latency = kind == "ewma"
        self.backends: tuple[Backend, ...] = ()
        self.loads: list[Load] = []
        self.pools: list[Pool] = []
        self.ids: list[bytes] = []
        self.balancer: Balancer = make_balancer(kind, (), [])
        self._pick: Callable[[bytes | None, frozenset[int]], int] = self.balancer.pick
        self.ramping = False
        self.live: list[int] = []  # indexes into all_* of the backends in the pool
        # A hash ring over every backend, built once: an ejection takes points out of it, and
        # the next snapshot keeps it if this service's backends are the same.
        self._ring: ConsistentHash | None = None
        if previous is not None and previous.service.balance == kind \
                and previous.all_backends == service.backends:
            self._ring = previous._ring
        self.rebuild(now)

    def __repr__(self) -> str:
        return (f"<ServiceState {self.service.name} live={len(self.backends)}/"
                f"{len(self.all_backends)} queued={len(self.queue)}>")

    def _live(self, now: float) -> list[int]:
        live = [i for i, load in enumerate(self.all_loads) if load.ejected_until <= now]
        return live or list(range(len(self.all_loads)))  # all ejected: better some than none

    def rebuild(self, now: float) -> None:
        """Recompute the live backends (ejected ones out) and the balancer over them."""
        self.live = live = self._live(now)
        self.loads = [self.all_loads[i] for i in live]
        self.pools = [self.all_pools[i] for i in live]
        self.ids = [self.all_ids[i] for i in live]
        self.backends = tuple(self.all_backends[i] for i in live)
        kind = self.service.balance
        slow = self.service.slow_start
        self.ramping = slow > 0 and kind in RAMPS and any(
            now - load.joined < slow for load in self.loads)
        if self.ramping:
            self.backends = tuple(
                replace(b, weight=max(1, math.ceil(
                    b.weight * RAMP_SCALE * min(1.0, (now - load.joined) / slow))))
                for b, load in zip(self.backends, self.loads, strict=True))
            if kind == "round_robin":
                kind = "weighted"  # equal full weights: round robin while nothing ramps
        if kind in HASHES:
            if self._ring is None:
                self._ring = ConsistentHash(self.all_backends)
            ring = self._ring
            self.balancer = ring if len(live) == len(self.all_backends) else ring.without(live)
        else:
            self.balancer = make_balancer(kind, self.backends, self.loads)
        self._pick = self.balancer.pick  # bound once: the request path calls it every time

    def pick(self, key: bytes | None, avoid: frozenset[int]) -> int:
        """The index of the backend for a request, or -1 if none can take it now."""
        limit = self.service.max_conns
        if limit:
            full = frozenset(i for i, load in enumerate(self.loads) if load.inflight >= limit)
            if full:
                avoid = avoid | full
        return self._pick(key, avoid)

    def may_retry(self) -> bool:
        """Take one retry from the budget if there is one (retries are at most a share of
        requests, as Linkerd's budgets: a struggling backend is not hit twice as hard)."""
        if self.budget >= 1.0:
            self.budget -= 1.0
            return True
        return False

    def count_request(self) -> None:
        """A request earns the budget its share of a retry."""
        self.budget = min(RETRY_BUDGET_CAP, self.budget + self.service.retry_budget)

    def avoiding(self, tried: tuple[Load, ...]) -> frozenset[int]:
        """The indexes of backends a retry must not use (they were tried)."""
        return frozenset(i for i, load in enumerate(self.loads) if load in tried)

    def failed(self, load: Load, reason: str, now: float) -> bool:
        """A connect error or 5xx from a backend; True if it was ejected."""
        load.failures += 1
        load.last_error = reason
        threshold = self.service.eject_after
        if not threshold or load.failures < threshold or len(self.backends) <= 1:
            return False
        cool_down = self.service.ejection * 2 ** min(load.ejections, MAX_EJECTION_DOUBLINGS)
        load.ejected_until = now + cool_down
        load.ejections += 1
        load.failures = 0
        self.rebuild(now)
        return True

    @staticmethod
    def succeeded(load: Load) -> None:
        """A good answer from a backend."""
        load.failures = 0

    def tick(self, now: float) -> None:
        """Readmit backends whose cool-down is over; move slow-start weights along. A Load is
        shared by every service that sends to its address, so another service may have
        ejected or readmitted one of ours: then the live set changed too."""
        for load in self.all_loads:
            if load.ejected_until and load.ejected_until <= now:
                load.ejected_until = 0.0
                load.joined = now
        if self.ramping or self._live(now) != self.live:
            self.rebuild(now)
