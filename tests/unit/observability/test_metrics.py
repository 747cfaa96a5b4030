"""The daemon's sum of worker counters, and the Prometheus page made of it."""

from prometheus_client.parser import text_string_to_metric_families

from wharf.observability.metrics import exposition
from wharf.observability.traffic import TrafficTotals
from wharf.proxy.counters import Counters, TrafficWriter


def _report(requests: int, connections: int = 1) -> dict:
    counters = Counters()
    for _ in range(requests):
        counters.route("*/").finished(200, 0.02, 1, 10)
        counters.backend("app:web", "127.0.0.1", 9000).answered(200, 0.01)
    counters.service("app:web").retries = 1
    return TrafficWriter().encode(counters, connections, {"app:web": 2})


def _samples(page: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(page.decode())
            for s in family.samples}


def test_totals_add_up_the_workers_and_keep_a_gone_workers_counts() -> None:
    totals = TrafficTotals()
    totals.worker(1).apply(_report(3))
    totals.worker(2).apply(_report(2))
    assert totals.total().routes["*/"][2] == 5
    totals.worker_gone(1)
    total = totals.total()
    assert total.routes["*/"][2] == 5  # counts never go down
    assert total.connections == 1  # gauges: only the live workers
    assert total.queued == {"app:web": 2}


def test_the_page_has_requests_by_class_histograms_and_instance_figures() -> None:
    totals = TrafficTotals()
    totals.worker(1).apply(_report(4))
    rows = [
        {"kind": "instance", "app": "web", "instance": 0, "state": "RUNNING", "ready": True,
         "restarts": 2, "cpu_seconds": 1.5, "rss_bytes": 1024, "uptime_s": 9.0},
        {"kind": "backend", "service": "app:web", "backend": "127.0.0.1:9000",
         "health": "down", "ejected": False, "inflight": 0},
    ]
    page = exposition(rows, totals.total(), [{"name": "a.test", "source": "acme",
                                              "not_after": 1.8e9}])
    samples = _samples(page)
    assert samples[("wharf_http_requests_total", (("code", "2xx"), ("route", "*/")))] == 4
    assert samples[("wharf_http_request_duration_seconds_bucket",
                    (("le", "0.025"), ("route", "*/")))] == 4
    assert samples[("wharf_http_request_duration_seconds_bucket",
                    (("le", "0.01"), ("route", "*/")))] == 0
    assert samples[("wharf_backend_requests_total", (("backend", "127.0.0.1:9000"),
                                                     ("code", "2xx"), ("service", "app:web")))] == 4
    assert samples[("wharf_instance_state", (("app", "web"), ("instance", "0"),
                                             ("state", "RUNNING")))] == 1
    assert samples[("wharf_instance_restarts_total", (("app", "web"), ("instance", "0")))] == 2
    assert samples[("wharf_backend_health_up", (("backend", "127.0.0.1:9000"),
                                                ("service", "app:web")))] == 0
    assert samples[("wharf_service_retries_total", (("service", "app:web"),))] == 1
    assert samples[("wharf_service_queue_length", (("service", "app:web"),))] == 2
    assert samples[("wharf_certificate_not_after_timestamp_seconds",
                    (("name", "a.test"), ("source", "acme")))] == 1.8e9
    assert samples[("wharf_http_response_bytes_total", (("route", "*/"),))] == 40


def test_a_backend_that_left_the_snapshot_is_forgotten_everywhere() -> None:
    counters, writer, totals = Counters(), TrafficWriter(), TrafficTotals()
    counters.backend("app:web", "127.0.0.1", 9000).answered(200, 0.01)
    counters.backend("app:web", "127.0.0.1", 9001).answered(200, 0.01)
    totals.apply(1, writer.encode(counters, 0, {}))
    totals.worker(2).backends[("app:web", "127.0.0.1", 9000)] = [0.0] * 20
    totals.worker_gone(2)  # a gone worker had counts of it too
    counters.keep_backends({("app:web", "127.0.0.1", 9001)})
    report = writer.encode(counters, 0, {})
    assert report["gone"] == [["app:web", "127.0.0.1", 9000]]
    totals.apply(1, report)
    assert set(totals.total().backends) == {("app:web", "127.0.0.1", 9001)}
    assert writer.encode(counters, 0, {})["gone"] == []  # said once


def test_a_unix_backend_is_labelled_with_its_address() -> None:
    counters = Counters()
    counters.backend("route:/", "unix:/run/app.sock", 0).answered(200, 0.01)
    totals = TrafficTotals()
    totals.worker(1).apply(TrafficWriter().encode(counters, 0, {}))
    samples = _samples(exposition([], totals.total(), []))
    assert samples[("wharf_backend_requests_total", (("backend", "unix:/run/app.sock"),
                                                     ("code", "2xx"), ("service", "route:/")))] == 1
