"""The daemon's sum of every proxy worker's traffic counters (see wharf/proxy/counters.py).

Each worker reports its counters whole, as they stand since it started; the daemon keeps the
latest of each worker and adds them up when asked. When a worker goes (a crash, a reload), its
last counts move to `retired`, so a total never goes down while the daemon runs: Prometheus
sees a reset only when the daemon itself restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wharf.addresses import format_address
from wharf.proxy.counters import BUCKETS, CLASSES

HISTOGRAM = len(BUCKETS) + 2  # the bucket counts with +Inf, then the sum
# How many numbers follow the key in each kind of row (see the counters' `values`).
ROUTE_VALUES = CLASSES + HISTOGRAM + 3
BACKEND_VALUES = CLASSES + HISTOGRAM + 2
SERVICE_VALUES = 2

RouteKey = str
ServiceKey = str
BackendKey = tuple[str, str, int]


@dataclass(slots=True)
class WorkerTraffic:
    """The latest counts from one worker."""

    routes: dict[RouteKey, list[float]] = field(default_factory=dict)
    services: dict[ServiceKey, list[float]] = field(default_factory=dict)
    backends: dict[BackendKey, list[float]] = field(default_factory=dict)
    connections: int = 0
    queued: dict[str, int] = field(default_factory=dict)

    def apply(self, data: dict[str, Any]) -> None:
        """Take in the `traffic` part of a report; raises ValueError/TypeError/KeyError if it
        is not one."""
        for row in data["routes"]:
            self.routes[str(row[0])] = _numbers(row[1:], ROUTE_VALUES)
        for row in data["services"]:
            self.services[str(row[0])] = _numbers(row[1:], SERVICE_VALUES)
        for row in data["backends"]:
            key = (str(row[0]), str(row[1]), int(row[2]))
            self.backends[key] = _numbers(row[3:], BACKEND_VALUES)
        for service, host, port in data.get("gone", ()):
            self.backends.pop((str(service), str(host), int(port)), None)
        self.connections = int(data["connections"])
        self.queued = {str(k): int(v) for k, v in data["queued"].items()}


def _numbers(values: list[Any], count: int) -> list[float]:
    if len(values) != count:
        raise ValueError(f"expected {count} numbers, got {len(values)}")
    return [float(v) for v in values]


def _add(into: dict[Any, list[float]], rows: dict[Any, list[float]]) -> None:
    for key, values in rows.items():
        have = into.get(key)
        if have is None:
            into[key] = list(values)
        else:
            for i, v in enumerate(values):
                have[i] += v


@dataclass(slots=True)
class TrafficTotals:
    """Every worker's counts, and those of workers that are gone."""

    workers: dict[int, WorkerTraffic] = field(default_factory=dict)  # by connection id
    retired: WorkerTraffic = field(default_factory=WorkerTraffic)

    def worker(self, conn_id: int) -> WorkerTraffic:
        """The counts of the worker on connection `conn_id` (made on first use)."""
        found = self.workers.get(conn_id)
        if found is None:
            found = self.workers[conn_id] = WorkerTraffic()
        return found

    def worker_gone(self, conn_id: int) -> None:
        """The worker on `conn_id` is gone: keep its counts, drop its gauges."""
        gone = self.workers.pop(conn_id, None)
        if gone is not None:
            _add(self.retired.routes, gone.routes)
            _add(self.retired.services, gone.services)
            _add(self.retired.backends, gone.backends)

    def apply(self, conn_id: int, data: dict[str, Any]) -> None:
        """Take in the `traffic` part of a report from the worker on `conn_id`; a backend it
        says is gone goes from the gone workers' counts too. Raises ValueError, TypeError,
        KeyError or IndexError if it is not one."""
        self.worker(conn_id).apply(data)
        for service, host, port in data.get("gone", ()):
            self.retired.backends.pop((str(service), str(host), int(port)), None)

    def total(self) -> WorkerTraffic:
        """The sum over every worker, live or gone."""
        total = WorkerTraffic()
        for part in (self.retired, *self.workers.values()):
            _add(total.routes, part.routes)
            _add(total.services, part.services)
            _add(total.backends, part.backends)
        total.connections = sum(w.connections for w in self.workers.values())
        for w in self.workers.values():
            for name, n in w.queued.items():
                total.queued[name] = total.queued.get(name, 0) + n
        return total


def _histogram(values: list[float]) -> dict[str, Any]:
    n = len(BUCKETS) + 1
    return {"buckets": [int(v) for v in values[:n]], "sum": values[n]}


def as_json(traffic: WorkerTraffic) -> dict[str, Any]:
    """The totals with every number named (`GET /api/traffic`, `wharf traffic`): counters
    since the daemon started, so a client computes rates and quantiles from two of them.
    `requests` is by status class (index 0: no answer, 1-5: 1xx-5xx); a histogram's
    `buckets` count the observations at most each bound of `bounds` (not cumulated), the last
    one above them all."""
    h = CLASSES + HISTOGRAM
    return {
        "bounds": list(BUCKETS),
        "routes": [{"route": key, "requests": [int(v) for v in values[:CLASSES]],
                    "duration": _histogram(values[CLASSES:h]), "bytes_in": int(values[h]),
                    "bytes_out": int(values[h + 1]), "rate_limited": int(values[h + 2])}
                   for key, values in sorted(traffic.routes.items())],
        "services": [{"service": key, "retries": int(values[0]),
                      "queue_timeouts": int(values[1]), "queued": traffic.queued.get(key, 0)}
                     for key in sorted(set(traffic.services) | set(traffic.queued))
                     for values in [traffic.services.get(key, [0.0] * SERVICE_VALUES)]],
        "backends": [{"service": key[0], "backend": format_address(key[1], key[2]),
                      "requests": [int(v) for v in values[:CLASSES]],
                      "upstream": _histogram(values[CLASSES:h]),
                      "connect_errors": int(values[h]), "ejections": int(values[h + 1])}
                     for key, values in sorted(traffic.backends.items())],
        "connections": traffic.connections,
    }
