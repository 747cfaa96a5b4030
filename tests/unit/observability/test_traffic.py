"""The traffic totals as the API gives them (`GET /api/traffic`): every number named."""

from wharf.observability.traffic import TrafficTotals, as_json
from wharf.proxy.counters import BUCKETS, Counters, TrafficWriter


def test_the_totals_as_json_name_every_counter() -> None:
    counters = Counters()
    route = counters.route("*/")
    route.finished(200, 0.02, 10, 100)
    route.finished(503, 0.3, 10, 50)
    counters.backend("app:web", "127.0.0.1", 9000).answered(200, 0.004)
    counters.service("app:web").retries = 2
    totals = TrafficTotals()
    totals.worker(1).apply(TrafficWriter().encode(counters, 3, {"app:web": 1, "app:api": 4}))
    data = as_json(totals.total())
    assert data["bounds"] == list(BUCKETS)
    (r,) = data["routes"]
    assert r["route"] == "*/" and r["requests"] == [0, 0, 1, 0, 0, 1]
    assert len(r["duration"]["buckets"]) == len(BUCKETS) + 1 == 12
    assert r["duration"]["buckets"][BUCKETS.index(0.025)] == 1  # 0.02 s: at most 25 ms
    assert r["duration"]["buckets"][BUCKETS.index(0.5)] == 1
    assert abs(r["duration"]["sum"] - 0.32) < 1e-9
    assert (r["bytes_in"], r["bytes_out"], r["rate_limited"]) == (20, 150, 0)
    (b,) = data["backends"]
    assert b["service"] == "app:web" and b["backend"] == "127.0.0.1:9000"
    assert b["requests"][2] == 1 and b["upstream"]["buckets"][0] == 1
    assert (b["connect_errors"], b["ejections"]) == (0, 0)
    # A service only the queue gauge knows of is listed too, with zero counters.
    assert data["services"] == [
        {"service": "app:api", "retries": 0, "queue_timeouts": 0, "queued": 4},
        {"service": "app:web", "retries": 2, "queue_timeouts": 0, "queued": 1}]
    assert data["connections"] == 3


def test_no_worker_yet_is_empty_lists() -> None:
    assert as_json(TrafficTotals().total()) == {"bounds": list(BUCKETS), "routes": [],
                                                "services": [], "backends": [],
                                                "connections": 0}
