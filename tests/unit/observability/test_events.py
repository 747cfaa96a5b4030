"""The event stream: a bounded ring of the recent events, and subscribers that never block it."""

from __future__ import annotations

import asyncio

from wharf.observability.events import Event, EventKind, EventStream


def stream(size: int = 1000) -> EventStream:
    now = iter(range(1_000_000))
    return EventStream(size, clock=lambda: float(next(now)))


def test_events_are_numbered_and_timed_in_order():
    events = stream()
    first = events.emit(EventKind.INSTANCE_STARTED, "pid 7", app="web", instance=0, pid=7)
    second = events.emit(EventKind.HEALTH_DOWN, "down: timeout", service="web",
                         backend="127.0.0.1:8000")
    assert (first.seq, second.seq) == (1, 2)
    assert first.time < second.time
    assert events.recent() == [first, second]


def test_the_ring_keeps_only_the_last_events():
    events = stream(size=3)
    for i in range(5):
        events.emit(EventKind.CONFIG_RELOADED, f"reload {i}")
    assert [e.seq for e in events.recent()] == [3, 4, 5]


def test_recent_takes_a_count_and_a_sequence_to_resume_after():
    events = stream()
    for _ in range(10):
        events.emit(EventKind.ROLL_DONE, "done", app="web")
    assert [e.seq for e in events.recent(2)] == [9, 10]
    assert [e.seq for e in events.recent(None, after=7)] == [8, 9, 10]
    assert events.recent(0) == []


def test_a_subscriber_receives_every_new_event():
    async def main() -> list[Event]:
        events = stream()
        events.emit(EventKind.DAEMON_STARTED, "before")
        subscription = events.subscribe()
        events.emit(EventKind.INSTANCE_READY, "one", app="web", instance=0)
        events.emit(EventKind.INSTANCE_READY, "two", app="web", instance=1)
        got = [await subscription.get(), await subscription.get()]
        subscription.close()
        events.emit(EventKind.INSTANCE_READY, "after close")
        assert subscription.get_nowait() is None
        return got

    assert [e.message for e in asyncio.run(main())] == ["one", "two"]


def test_a_slow_subscriber_misses_events_and_is_told_how_many_never_blocking_the_stream():
    async def main() -> None:
        events = stream()
        slow = events.subscribe(maxsize=2)
        for i in range(5):
            events.emit(EventKind.INSTANCE_EXITED, f"exit {i}")  # never waits for the reader
        assert slow.dropped == 3
        assert [(await slow.get()).message for _ in range(2)] == ["exit 0", "exit 1"]

    asyncio.run(main())


def test_the_json_form_names_every_field_and_the_line_reads_well():
    event = stream().emit(EventKind.INSTANCE_EXITED, "RUNNING -> EXITED (exit status 3)",
                          app="web", instance=1, pid=42, exit_code=3)
    data = event.to_json()
    assert data["kind"] == "instance.exited" and data["level"] == "warning"
    assert data["exit_code"] == 3 and data["exit_signal"] is None and data["service"] is None
    assert set(data) == {"seq", "time", "kind", "level", "message", "app", "instance", "pid",
                         "exit_code", "exit_signal", "service", "backend", "certificate"}
    assert "instance.exited" in event.line() and "web.1 RUNNING -> EXITED" in event.line()


def test_a_backend_event_names_its_service_and_address():
    event = stream().emit(EventKind.BACKEND_EJECTED, "ejected: 502", service="api",
                          backend="10.0.0.2:80")
    assert event.subject() == "api 10.0.0.2:80"
    assert event.level == "warning"
