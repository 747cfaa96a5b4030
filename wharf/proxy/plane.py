"""The state a proxy worker serves from: built from a snapshot, changed where the next differs.

Requests already in flight keep the route and backend they were given; new requests see the
new snapshot. Pools survive a snapshot for backends that remain, and are closed for those that
left (no service has them any more: each backend's users are counted, so a change touches only
the backends of the services that changed).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

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
from wharf.registry.snapshot import Backend, Route, Service, Settings, Snapshot

if TYPE_CHECKING:
    from wharf.proxy.request import Request


_HEX2: Final = [b"%02x" % n for n in range(256)]


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
        self._users: dict[tuple[str, int], int] = {}  # how many services have each backend
        self._applied = False  # a snapshot was: the next one's pieces compare with it
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
        self._id_base = self._id_prefix  # and the counter's hex digits but the last two

    def __repr__(self) -> str:
        return (f"<DataPlane version={self.snapshot.version} connections={len(self.connections)}"
                f" pools={len(self.pools)}>")

    def apply(self, snapshot: Snapshot) -> None:
        """Serve from `snapshot` from now on. Only what differs from the current snapshot is
        rebuilt: a service that is the same (the same object, as a delta leaves it, or an
        equal one) keeps its state whole, balancer included; the routes, when the same tuple,
        keep their router, counters and rate limits. So a change of one backend among 1,000
        services costs about one service's rebuild (`bench/discovery.py --scale`)."""
        old, self.snapshot = self.snapshot, snapshot
        first, self._applied = not self._applied, True
        if first or snapshot.settings is not old.settings:
            self._apply_settings(snapshot.settings)
        if first or snapshot.routes is not old.routes:
            self._apply_routes(old.routes, snapshot.routes)
        if first or snapshot.tls is not old.tls or snapshot.listen_tls != old.listen_tls:
            self.https = Https(snapshot)
        if first or snapshot.services is not old.services:
            self._apply_services(snapshot.services)

    def _apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        # Copied out of the frozen settings: the request path reads them as native fields.
        self.header_timeout = settings.header_timeout
        self.idle_timeout = settings.idle_timeout
        self.upstream_timeout = settings.upstream_timeout
        self.connect_timeout = settings.connect_timeout
        self.max_header_size = settings.max_header_size
        self.max_body_size = settings.max_body_size
        self.underscores_in_headers = settings.underscores_in_headers
        self.counting = settings.metrics
        for pool in self.pools.values():
            pool.max_idle = settings.pool_max_idle
            pool.idle_timeout = settings.pool_idle_timeout
        self._trusted = tuple(ipaddress.ip_network(n) for n in settings.trusted_proxies)
        self.access.reconfigure(settings.access_log_file, settings.access_log,
                                settings.access_log_max_size, settings.access_log_backups)

    def _apply_routes(self, old_routes: tuple[Route, ...], routes: tuple[Route, ...]) -> None:
        self.route_traffic = {id(r): self.counters.route(route_label(r.host, r.path))
                              for r in routes}
        self.router = Router(routes)
        # A route whose rate limit is unchanged keeps its buckets (routes compare by value).
        kept = {route: self.limiters[id(route)] for route in old_routes
                if id(route) in self.limiters}
        self.limiters = {id(r): self._limiter(r, kept) for r in routes if r.rate}

    def _apply_services(self, services: tuple[Service, ...]) -> None:
        now = self.loop.time()
        old_states = self.services
        states: dict[str, ServiceState] = {}
        gone: list[ServiceState] = []  # changed or removed: their backends may be unused now
        for service in services:
            before = old_states.get(service.name)
            if before is not None and (before.service is service or before.service == service):
                states[service.name] = before
                continue
            self.counters.service(service.name)  # reported from the start, at zero
            for address in {(b.host, b.port) for b in service.backends}:
                self._users[address] = self._users.get(address, 0) + 1
            svc = states[service.name] = ServiceState(
                service, [self._load(b) for b in service.backends],
                [self._pool(b) for b in service.backends], now, before)
            if before is not None:  # requests waiting for a backend, and the retry budget,
                svc.queue = before.queue  # carry over (the old state's in-flight requests
                svc.budget = before.budget  # still hand their slots to this queue)
                for waiting in svc.queue:
                    waiting.wait_on(svc)
                gone.append(before)
        gone += [svc for name, svc in old_states.items() if name not in states]
        self.services = states
        for svc in gone:
            name = svc.service.name
            kept = states.get(name)
            still = {(b.host, b.port) for b in kept.all_backends} if kept is not None else set()
            for address in {(b.host, b.port) for b in svc.all_backends}:
                if address not in still:
                    self.counters.backends.pop((name, *address), None)
                users = self._users[address] - 1
                if users:
                    self._users[address] = users
                    continue
                del self._users[address]  # no service has it any more
                pool = self.pools.pop(address, None)
                if pool is not None:
                    pool.close()
                load = self.loads.pop(address, None)
                if load is not None and load.inflight > 0:
                    self.leaving[address] = load

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
        # The counter in hex, at least two digits: the last two from a table, the others
        # formatted once every 256 requests (`b"%x" %` was 2.5 % of the request path).
        self._id_counter += 1
        low = self._id_counter & 0xFF
        if low == 0:
            self._id_base = self._id_prefix + b"%x" % (self._id_counter >> 8)
        return self._id_base + _HEX2[low]

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
            done = {k for k, load in self.leaving.items() if load.inflight == 0}
            self.leaving = {k: load for k, load in self.leaving.items() if load.inflight > 0}
            # Their last requests made their counters again: no service has them, so they go.
            for key in [k for k in self.counters.backends if (k[1], k[2]) in done]:
                del self.counters.backends[key]
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
