"""`/metrics`: the daemon's view of apps, backends, traffic and certificates, in Prometheus's
text format, built by prometheus-client from the status rows and the workers' traffic totals.

Names and units follow Prometheus's conventions (`_total`, `_seconds`, `_bytes`). Labels come
only from the config and the supervisor (app, instance, route, service, backend, state, name),
never from a request: the number of series is bounded by the config (Caddy's per-host metrics
were not: caddyserver/caddy#3784). Nothing here runs on the request path; a scrape formats what
the daemon already holds. `docs/metrics.md` lists every metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from wharf.addresses import format_address
from wharf.observability.traffic import WorkerTraffic
from wharf.proxy.counters import BUCKETS, CLASSES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STATES = ("STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL")
_CLASS_NAMES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
assert len(_CLASS_NAMES) == CLASSES


def exposition(rows: list[dict[str, Any]], traffic: WorkerTraffic,
               certificates: Iterable[dict[str, Any]] = ()) -> bytes:
    """The metrics page for these status rows (instances and backends, as `status --json`
    gives them), traffic totals and certificate rows (`name`, `source`, `not_after` as a Unix
    time)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(rows, traffic, list(certificates)))
    return generate_latest(registry)


class _Snapshot(Collector):
    """The families for one scrape, from data gathered before it."""

    def __init__(self, rows: list[dict[str, Any]], traffic: WorkerTraffic,
                 certificates: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.traffic = traffic
        self.certificates = certificates

    def collect(self) -> Iterator[Metric]:
        """Every family."""
        yield from _instances([r for r in self.rows if r.get("kind") == "instance"])
        yield from _backends([r for r in self.rows if r.get("kind") == "backend"])
        yield from _routes(self.traffic)
        yield from _services(self.traffic)
        yield from _backend_traffic(self.traffic)
        yield from _certificates(self.certificates)


def _instances(rows: list[dict[str, Any]]) -> Iterator[Metric]:
    labels = ["app", "instance"]
    state = GaugeMetricFamily("wharf_instance_state", "1 for the state the instance is in",
                              labels=[*labels, "state"])
    ready = GaugeMetricFamily("wharf_instance_ready", "1 if the instance takes traffic",
                              labels=labels)
    restarts = CounterMetricFamily("wharf_instance_restarts", "Restarts since the daemon started",
                                   labels=labels)
    cpu = CounterMetricFamily("wharf_instance_cpu_seconds", "CPU time of the instance's "
                              "processes alive now (user + system)", labels=labels)
    rss = GaugeMetricFamily("wharf_instance_resident_memory_bytes", "Resident memory of the "
                            "instance's process tree", labels=labels)
    uptime = GaugeMetricFamily("wharf_instance_uptime_seconds", "Seconds since the instance "
                               "started", labels=labels)
    for row in rows:
        key = [str(row["app"]), str(row["instance"])]
        for name in STATES:
            state.add_metric([*key, name], 1.0 if row["state"] == name else 0.0)
        ready.add_metric(key, 1.0 if row["ready"] else 0.0)
        restarts.add_metric(key, float(row["restarts"]))
        if row.get("cpu_seconds") is not None:
            cpu.add_metric(key, float(row["cpu_seconds"]))
        if row.get("rss_bytes") is not None:
            rss.add_metric(key, float(row["rss_bytes"]))
        if row.get("uptime_s") is not None:
            uptime.add_metric(key, float(row["uptime_s"]))
    yield from (state, ready, restarts, cpu, rss, uptime)


def _backends(rows: list[dict[str, Any]]) -> Iterator[Metric]:
    labels = ["service", "backend"]
    health = GaugeMetricFamily("wharf_backend_health_up", "1 if active health checks pass (or "
                               "none are configured), 0 if they fail", labels=labels)
    ejected = GaugeMetricFamily("wharf_backend_ejected", "1 if a worker ejected the backend "
                                "after errors (passive health)", labels=labels)
    inflight = GaugeMetricFamily("wharf_backend_requests_in_flight", "Requests being answered "
                                 "by the backend", labels=labels)
    for row in rows:
        key = [str(row["service"]), str(row["backend"])]
        health.add_metric(key, 0.0 if row["health"] == "down" else 1.0)
        ejected.add_metric(key, 1.0 if row["ejected"] else 0.0)
        inflight.add_metric(key, float(row["inflight"]))
    yield from (health, ejected, inflight)


def _histogram(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str],
               list[float]]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    for key, values in rows:
        counts, total = values[:len(BUCKETS) + 1], values[len(BUCKETS) + 1]
        cumulative, buckets = 0.0, []
        for bound, count in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric(key, buckets, total)
    return family


def _by_class(name: str, doc: str, labels: list[str],
              rows: Iterable[tuple[list[str], list[float]]]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[*labels, "code"])
    for key, values in rows:
        for code, count in zip(_CLASS_NAMES, values[:CLASSES], strict=True):
            if count or code != "none":
                family.add_metric([*key, code], count)
    return family


def _routes(traffic: WorkerTraffic) -> Iterator[Metric]:
    rows = [([route], values) for route, values in sorted(traffic.routes.items())]
    hist = CLASSES + len(BUCKETS) + 2
    yield _by_class("wharf_http_requests", "Requests answered, by route and status class "
                    "(code=\"none\": the client got no answer)", ["route"], rows)
    yield _histogram("wharf_http_request_duration_seconds", "Time from the request's first "
                     "byte to the answer's last, by route", ["route"],
                     ((k, v[CLASSES:hist]) for k, v in rows))
    received = CounterMetricFamily("wharf_http_request_bytes", "Request body bytes received",
                                   labels=["route"])
    sent = CounterMetricFamily("wharf_http_response_bytes", "Answer body bytes sent (as the "
                               "access log counts them)", labels=["route"])
    limited = CounterMetricFamily("wharf_http_rate_limited_requests", "Requests refused by the "
                                  "route's rate limit (429)", labels=["route"])
    for key, values in rows:
        received.add_metric(key, values[hist])
        sent.add_metric(key, values[hist + 1])
        limited.add_metric(key, values[hist + 2])
    yield from (received, sent, limited)
    yield GaugeMetricFamily("wharf_http_open_connections", "Open client connections over every "
                            "proxy worker", value=float(traffic.connections))


def _services(traffic: WorkerTraffic) -> Iterator[Metric]:
    retries = CounterMetricFamily("wharf_service_retries", "Requests sent again to another "
                                  "backend", labels=["service"])
    timeouts = CounterMetricFamily("wharf_service_queue_timeouts", "Requests that waited "
                                   "queue_timeout for a free backend and got 503",
                                   labels=["service"])
    queued = GaugeMetricFamily("wharf_service_queue_length", "Requests waiting for a free "
                               "backend (max_conns reached)", labels=["service"])
    for name, values in sorted(traffic.services.items()):
        retries.add_metric([name], values[0])
        timeouts.add_metric([name], values[1])
    for name in sorted(traffic.services):  # a worker reports only the queues that hold some
        queued.add_metric([name], float(traffic.queued.get(name, 0)))
    yield from (retries, timeouts, queued)


def _backend_traffic(traffic: WorkerTraffic) -> Iterator[Metric]:
    rows = [([s, format_address(h, p)], values)
            for (s, h, p), values in sorted(traffic.backends.items())]
    hist = CLASSES + len(BUCKETS) + 2
    labels = ["service", "backend"]
    yield _by_class("wharf_backend_requests", "Requests a backend answered, by status class "
                    "(code=\"none\": it failed to)", labels, rows)
    yield _histogram("wharf_backend_request_duration_seconds", "Upstream time: from choosing "
                     "the backend (connecting included) to the answer's last byte", labels,
                     ((k, v[CLASSES:hist]) for k, v in rows))
    errors = CounterMetricFamily("wharf_backend_connect_errors", "Connections to the backend "
                                 "that failed", labels=labels)
    ejections = CounterMetricFamily("wharf_backend_ejections", "Times a worker ejected the "
                                    "backend after consecutive errors", labels=labels)
    for key, values in rows:
        errors.add_metric(key, values[hist])
        ejections.add_metric(key, values[hist + 1])
    yield from (errors, ejections)


def _certificates(rows: list[dict[str, Any]]) -> Iterator[Metric]:
    family = GaugeMetricFamily("wharf_certificate_not_after_timestamp_seconds", "When the "
                               "certificate expires, as a Unix time", labels=["name", "source"])
    for row in rows:
        if row.get("not_after") is not None:  # a name still waiting for its first one
            family.add_metric([str(row["name"]), str(row["source"])], float(row["not_after"]))
    yield family
