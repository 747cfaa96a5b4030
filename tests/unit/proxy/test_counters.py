"""The worker's traffic counters and the reports of their changes."""

from wharf.proxy.counters import BUCKETS, Counters, Histogram, TrafficWriter, route_label


def test_a_histogram_counts_each_observation_in_the_first_bucket_that_holds_it() -> None:
    h = Histogram()
    for seconds in (0.001, 0.005, 0.0051, 3.0, 99.0):
        h.observe(seconds)
    assert h.counts[0] == 2  # 0.001 and exactly 0.005 (Prometheus buckets are <=)
    assert h.counts[1] == 1
    assert h.counts[BUCKETS.index(5.0)] == 1
    assert h.counts[-1] == 1  # +Inf
    assert h.values()[-1] == 0.001 + 0.005 + 0.0051 + 3.0 + 99.0


def test_a_route_counts_answers_by_class_and_unanswered_requests_apart() -> None:
    route = Counters().route("*/")
    route.finished(200, 0.01, 10, 100)
    route.finished(204, 0.01, 0, 50)
    route.finished(503, 0.01, 0, 20)
    route.finished(0, 0.01, 0, 0)
    assert route.requests == [1, 0, 2, 0, 0, 1]
    assert (route.bytes_in, route.bytes_out) == (10, 170)


def test_counter_objects_are_made_once_per_key() -> None:
    counters = Counters()
    assert counters.backend("app:web", "127.0.0.1", 1) is counters.backend("app:web",
                                                                            "127.0.0.1", 1)
    assert counters.route(route_label(None, "/")) is counters.route("*/")
    assert route_label("example.com", "/api/") == "example.com/api/"


def test_a_report_sends_only_the_objects_that_changed_and_each_whole() -> None:
    counters, writer = Counters(), TrafficWriter()
    counters.route("*/").finished(200, 0.01, 0, 5)
    counters.backend("app:web", "127.0.0.1", 1).answered(200, 0.01)
    first = writer.encode(counters, 3, {"app:web": 0})
    assert [row[0] for row in first["routes"]] == ["*/"]
    assert first["backends"][0][:3] == ["app:web", "127.0.0.1", 1]
    assert first["connections"] == 3
    assert writer.encode(counters, 3, {})["routes"] == []  # nothing new
    counters.route("*/").finished(200, 0.01, 0, 5)
    again = writer.encode(counters, 3, {})
    assert again["routes"][0][1:7] == [0, 0, 2, 0, 0, 0]  # the whole count, not the change
    assert again["backends"] == []
