"""The state a proxy worker serves from: built from a snapshot, swapped whole on the next one.

Requests already in flight keep the route and backend they were given; new requests see the
new snapshot. Pools survive a snapshot for backends that remain, and are closed for those that
left.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from wharf.proxy.accesslog import AccessLog
from wharf.proxy.balancers import Load
from wharf.proxy.counters import Counters, RouteTraffic, route_label
from wharf.proxy.date import HTTP_DATE
from wharf.proxy.https import Https
from wharf.proxy.pool import Pool
from wharf.proxy.ratelimit import RateLimiter
from wharf.proxy.routing import Router
from wharf.proxy.services import ServiceState
from wharf.proxy.static import StaticServer
from wharf.registry.reports import Key, State
from wharf.registry.snapshot import Backend, Route, Settings, Snapshot

if TYPE_CHECKING:
    from wharf.proxy.request import Request


def _nothing() -> None:
    """The default `on_drained`: nobody listens."""


class Connection(Protocol):
    """A client connection, as the worker's sweep sees it."""

    deadline: float  # when its one deadline passes (0: none)

    def timed_out(self, now: float) -> None:
        """The deadline passed."""

    def answering(self) -> bool:
        """A request on it is being answered (a tunnel is not a request any more)."""

    def close(self) -> None:
        """Close once what was sent has left."""


class DataPlane:
    """Everything the request path reads, for one worker process."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Deadlines are computed from this clock, which `tick` advances every CLOCK_TICK: a
        # call to loop.time() per deadline was 4 % of the request path.
        self.now = loop.time()
        self.snapshot = Snapshot()
        self.settings = Settings()
        self.header_timeout = self.settings.header_timeout
        self.idle_timeout = self.settings.idle_timeout
        self.upstream_timeout = self.settings.upstream_timeout
        self.connect_timeout = self.settings.connect_timeout
        self.max_header_size = self.settings.max_header_size
        self.max_body_size = self.settings.max_body_size
        self.underscores_in_headers = self.settings.underscores_in_headers
        self.router = Router(())
        self.services: dict[str, ServiceState] = {}
        self.pools: dict[tuple[str, int], Pool] = {}
        self.loads: dict[tuple[str, int], Load] = {}  # outlive snapshots, like pools
        # Backends gone from the snapshot with requests still in flight: reported until those
        # finish, so that the daemon's drain waits for them.
        self.leaving: dict[tuple[str, int], Load] = {}
        self.on_drained: Callable[[], None] = _nothing  # a leaving backend's last one ended
        self.limiters: dict[int, RateLimiter] = {}  # by id() of the snapshot's Route
        # Traffic counters for /metrics, when the daemon asks for them (see counters.py).
        self.counting = False
        self.counters = Counters()
        self.route_traffic: dict[int, RouteTraffic] = {}  # by id() of the snapshot's Route
        self.unrouted = self.counters.route("")  # requests no route took (404, 400, ...)
        self.connections: set[Connection] = set()
        self.static = StaticServer()
        self.https = Https()
        self.access = AccessLog(None, "off")
        self._trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
        self._id_prefix = os.urandom(8).hex().encode()  # then a hex counter
        self._id_counter = 0

    def __repr__(self) -> str:
        return (f"<DataPlane version={self.snapshot.version} connections={len(self.connections)}"
                f" pools={len(self.pools)}>")

    def apply(self, snapshot: Snapshot) -> None:
        """Serve from `snapshot` from now on."""
        old_routes, self.snapshot = self.snapshot.routes, snapshot
        settings = self.settings = snapshot.settings
        # Copied out of the frozen settings: the request path reads them as native fields.
        self.header_timeout = settings.header_timeout
        self.idle_timeout = settings.idle_timeout
        self.upstream_timeout = settings.upstream_timeout
        self.connect_timeout = settings.connect_timeout
        self.max_header_size = settings.max_header_size
        self.max_body_size = settings.max_body_size
        self.underscores_in_headers = settings.underscores_in_headers
        self.counting = settings.metrics
        self.route_traffic = {id(r): self.counters.route(route_label(r.host, r.path))
                              for r in snapshot.routes}
        for service in snapshot.services:
            self.counters.service(service.name)  # reported from the start, at zero
        self.counters.keep_backends({(s.name, b.host, b.port) for s in snapshot.services
                                     for b in s.backends})
        self.router = Router(snapshot.routes)
        self.https = Https(snapshot)
        wanted = {(b.host, b.port) for s in snapshot.services for b in s.backends}
        for key in [k for k in self.pools if k not in wanted]:
            self.pools.pop(key).close()
        for key in [k for k in self.loads if k not in wanted]:
            load = self.loads.pop(key)
            if load.inflight > 0:
                self.leaving[key] = load
        now = self.loop.time()
        old_services, self.services = self.services, {
            s.name: ServiceState(s, [self._load(b) for b in s.backends],
                                 [self._pool(b) for b in s.backends], now,
                                 self.services.get(s.name))
            for s in snapshot.services}
        for name, svc in self.services.items():
            before = old_services.get(name)
            if before is not None:  # requests waiting for a backend, and the retry budget,
                svc.queue = before.queue  # carry over (the old state's in-flight requests
                svc.budget = before.budget  # still hand their slots to this queue)
                for waiting in svc.queue:
                    waiting.wait_on(svc)
        # A route whose rate limit is unchanged keeps its buckets (routes compare by value).
        kept = {route: self.limiters[id(route)] for route in old_routes
                if id(route) in self.limiters}
        self.limiters = {id(r): self._limiter(r, kept) for r in snapshot.routes if r.rate}
        for pool in self.pools.values():
            pool.max_idle = self.settings.pool_max_idle
            pool.idle_timeout = self.settings.pool_idle_timeout
        self._trusted = tuple(ipaddress.ip_network(n) for n in self.settings.trusted_proxies)
        self.access.reconfigure(settings.access_log_file, settings.access_log,
                                settings.access_log_max_size, settings.access_log_backups)

    def _load(self, backend: Backend) -> Load:
        key = (backend.host, backend.port)
        load = self.loads.get(key)
        if load is None:
            load = self.leaving.pop(key, None)  # back before its requests finished
            if load is None:
                load = Load(joined=self.loop.time())
            self.loads[key] = load
        return load

    @staticmethod
    def _limiter(route: Route, kept: dict[Route, RateLimiter]) -> RateLimiter:
        limiter = kept.get(route)
        return limiter if limiter is not None else RateLimiter(route.rate, route.burst)

    def _pool(self, backend: Backend) -> Pool:
        key = (backend.host, backend.port)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = Pool(self.settings.pool_max_idle,
                                          self.settings.pool_idle_timeout)
        return pool

    def is_trusted(self, ip: str) -> bool:
        """True if `ip` is a proxy whose X-Forwarded-* headers we keep."""
        if not self._trusted:
            return False
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._trusted)

    def next_request_id(self) -> bytes:
        """A request id unique to this worker process (prefix) and request (counter)."""
        self._id_counter += 1
        return self._id_prefix + b"%x" % self._id_counter

    def log_access(self, peer_ip: bytes, ex: Request | None, status: int = 0) -> None:
        """Record a finished request (None: refused unparsed, with `status`), if access
        logging is on."""
        if self.access.enabled:
            self.access.record(peer_ip, ex, status)

    def tick(self) -> None:
        """Advance the coarse clock; tell whoever listens when a leaving backend is done."""
        self.now = self.loop.time()
        HTTP_DATE.refresh(time.time())  # formats the Date header once a second
        if self.leaving and not all(load.inflight for load in self.leaving.values()):
            self.leaving = {k: load for k, load in self.leaving.items() if load.inflight > 0}
            self.on_drained()

    def sweep(self) -> None:
        """Enforce deadlines, drop expired idle upstream connections, flush the access log."""
        now = self.now = self.loop.time()
        for conn in [c for c in self.connections if c.deadline and c.deadline <= now]:
            conn.timed_out(now)
        for pool in self.pools.values():
            pool.sweep(now)
        for service in self.services.values():
            service.tick(now)
        for limiter in self.limiters.values():
            limiter.forget_idle(now)
        self.tick()
        self.access.flush()

    def backend_states(self) -> dict[Key, State]:
        """What this worker knows of each backend that has something to say (a request in
        flight, ejected, an error), for the daemon's status; the others are left out."""
        now = self.loop.time()
        states: dict[Key, State] = {}
        for name, svc in self.services.items():
            for b, load in zip(svc.all_backends, svc.all_loads, strict=True):
                ejected = load.ejected_until > now
                if load.inflight or ejected or load.last_error:
                    states[(name, b.host, b.port)] = (load.inflight, ejected, load.last_error)
        for (host, port), load in self.leaving.items():
            if load.inflight > 0:
                states[("", host, port)] = (load.inflight, False, "")
        return states

    def active_exchanges(self) -> int:
        """How many requests are being answered right now."""
        return sum(1 for c in self.connections if c.answering())
