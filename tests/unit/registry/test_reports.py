"""Worker reports: only backends with something to say, and of those only what changed."""

import json

from wharf.registry.reports import ReportWriter, WorkerReport

A = ("app:web", "127.0.0.1", 9001)
B = ("app:web", "127.0.0.1", 9002)


def entries(payload: bytes) -> list[list[object]]:
    return json.loads(payload)["backends"]


def test_a_report_carries_only_what_changed_since_the_last():
    writer = ReportWriter()
    first = writer.encode(7, 3, {A: (2, False, ""), B: (0, True, "connect: refused")})
    assert json.loads(first)["version"] == 3 and len(entries(first)) == 2
    assert entries(writer.encode(7, 3, {A: (2, False, ""), B: (0, True, "connect: refused")})) \
        == []
    assert entries(writer.encode(7, 3, {A: (1, False, ""), B: (0, True, "connect: refused")})) \
        == [[*A, 1, False, ""]]


def test_a_backend_with_nothing_left_to_say_is_sent_once_as_quiet():
    writer = ReportWriter()
    writer.encode(7, 3, {A: (1, False, "")})
    assert entries(writer.encode(7, 3, {})) == [[*A, 0, False, ""]]
    assert entries(writer.encode(7, 3, {})) == []


def test_the_daemon_adds_up_the_changes_and_forgets_quiet_backends():
    writer, report = ReportWriter(), WorkerReport()
    assert report.apply(writer.encode(7, 3, {A: (2, False, ""), B: (0, True, "timeout")}))
    assert report.apply(writer.encode(7, 4, {B: (0, True, "timeout")}))
    assert report.version == 4 and report.backends == {B: (0, True, "timeout")}


def test_ten_thousand_idle_backends_make_a_small_report():
    assert len(ReportWriter().encode(7, 3, {})) < 100


def test_what_is_not_a_report_is_refused_and_changes_nothing():
    report = WorkerReport()
    assert not report.apply(b"not json")
    assert not report.apply(b'{"version": 1, "backends": [["s", "h"]]}')
    assert report.version == -1 and report.backends == {}
