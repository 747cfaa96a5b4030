"""Traffic counters of one proxy worker: what `/metrics` shows, counted on the request path.

Theory of operation: each route, service and backend has a small object of plain integers that
the request path adds to when a request ends (a few additions and one bisect: nothing is
formatted or allocated there). The counters only grow, from the worker's start; about once a
second the worker sends the daemon every counter object that changed since its last report,
whole (`TrafficWriter`), and the daemon adds up the workers (`wharf.observability.traffic`).
Objects are keyed by what the daemon names them by - a route by its host and path, a service
by its name, a backend by (service, host, port) - and outlive snapshots, so a reload that keeps
a route keeps its counts. Nothing here is keyed by a request's path, header or client address:
the number of series is bounded by the config.
"""

from __future__ import annotations

from typing import Any, Final

# Prometheus's default buckets, in seconds: request durations from 5 ms to 10 s, and above.
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Answers by status class: index 1-5 for 1xx-5xx; 0 for a request that got no answer.
CLASSES: Final = 6


class Histogram:
    """Counts of observations per bucket (not cumulated: the exposition does that)."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation."""
        index = 0
        for bound in BUCKETS:  # most requests stop at the first bound or two
            if seconds <= bound:
                break
            index += 1
        self.counts[index] += 1
        self.total += seconds

    def values(self) -> list[Any]:
        """The counts, then the sum."""
        return [*self.counts, self.total]


class RouteTraffic:
    """Requests a route answered: by status class, total duration, bytes, rate-limited."""

    __slots__ = ("bytes_in", "bytes_out", "duration", "rate_limited", "requests")

    def __init__(self) -> None:
        self.requests = [0] * CLASSES
        self.duration = Histogram()
        self.bytes_in = 0
        self.bytes_out = 0
        self.rate_limited = 0

    def finished(self, status: int, seconds: float, bytes_in: int, bytes_out: int) -> None:
        """One request ended (status 0: it got no answer)."""
        self.requests[status // 100 if 100 <= status < 600 else 0] += 1
        self.duration.observe(seconds)
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out

    def values(self) -> list[Any]:
        """Every counter, in the order `TrafficTotals` reads them."""
        return [*self.requests, *self.duration.values(), self.bytes_in, self.bytes_out,
                self.rate_limited]


class BackendTraffic:
    """Requests sent to one backend of one service: answers by class, upstream time, errors."""

    __slots__ = ("connect_errors", "ejections", "requests", "upstream")

    def __init__(self) -> None:
        self.requests = [0] * CLASSES
        self.upstream = Histogram()
        self.connect_errors = 0
        self.ejections = 0

    def answered(self, status: int, seconds: float) -> None:
        """The backend answered (status 0: the exchange failed after it was connected)."""
        self.requests[status // 100 if 100 <= status < 600 else 0] += 1
        self.upstream.observe(seconds)

    def values(self) -> list[Any]:
        """Every counter, in the order `TrafficTotals` reads them."""
        return [*self.requests, *self.upstream.values(), self.connect_errors, self.ejections]


class ServiceTraffic:
    """What a service's queue and retries did."""

    __slots__ = ("queue_timeouts", "retries")

    def __init__(self) -> None:
        self.retries = 0
        self.queue_timeouts = 0

    def values(self) -> list[Any]:
        """Every counter, in the order `TrafficTotals` reads them."""
        return [self.retries, self.queue_timeouts]


class Counters:
    """Every counter object of one worker, by the names the daemon knows them by."""

    def __init__(self) -> None:
        self.routes: dict[str, RouteTraffic] = {}
        self.services: dict[str, ServiceTraffic] = {}
        self.backends: dict[tuple[str, str, int], BackendTraffic] = {}

    def route(self, label: str) -> RouteTraffic:
        """The counters of the route named `label` (made on first use)."""
        found = self.routes.get(label)
        if found is None:
            found = self.routes[label] = RouteTraffic()
        return found

    def service(self, name: str) -> ServiceTraffic:
        """The counters of the service `name` (made on first use)."""
        found = self.services.get(name)
        if found is None:
            found = self.services[name] = ServiceTraffic()
        return found

    def keep_backends(self, wanted: set[tuple[str, str, int]]) -> None:
        """Drop the counters of backends not in `wanted` (they left the snapshot; a request
        still in flight to one makes it again when it ends)."""
        for key in [k for k in self.backends if k not in wanted]:
            del self.backends[key]

    def backend(self, service: str, host: str, port: int) -> BackendTraffic:
        """The counters of one backend of one service (made on first use)."""
        key = (service, host, port)
        found = self.backends.get(key)
        if found is None:
            found = self.backends[key] = BackendTraffic()
        return found


def route_label(host: str | None, path: str) -> str:
    """How metrics name a route: its host pattern (or `*`) and path prefix, `*/` for the
    catch-all. Two routes with one host and path (told apart by method or header) add up."""
    return f"{host or '*'}{path}"


class TrafficWriter:
    """The worker's side of the reports: only the counter objects that changed since the
    last report on this connection, each whole (so a lost report loses nothing)."""

    def __init__(self) -> None:
        self._sent: dict[tuple[str, object], list[Any]] = {}

    def encode(self, counters: Counters, connections: int,
               queued: dict[str, int]) -> dict[str, Any]:
        """The changes, as plain lists for JSON; `connections` is the number of open client
        connections and `queued` each service's queue length now (gauges, always sent)."""
        changes: dict[str, Any] = {"connections": connections, "queued": queued}
        for kind, table in (("routes", counters.routes), ("services", counters.services),
                            ("backends", counters.backends)):
            rows = []
            for key, counter in table.items():
                values = counter.values()
                if self._sent.get((kind, key)) != values:
                    self._sent[(kind, key)] = values
                    rows.append([*(key if isinstance(key, tuple) else (key,)), *values])
            changes[kind] = rows
        # Backends that left the snapshot (their counters were dropped): the daemon forgets
        # them too, else every port a rolled instance ever had would stay a series.
        gone = [sent for kind, sent in self._sent if kind == "backends"
                and sent not in counters.backends]
        for sent in gone:
            del self._sent[("backends", sent)]
        changes["gone"] = [list(sent) for sent in gone if isinstance(sent, tuple)]
        return changes
