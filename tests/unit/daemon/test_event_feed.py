"""Backend ejections as events: what the workers report, diffed."""

from __future__ import annotations

from wharf.daemon.event_feed import EjectionWatch
from wharf.observability.events import EventKind, EventStream


def test_an_ejection_and_a_readmission_are_each_said_once():
    events, watch = EventStream(), EjectionWatch()
    ejected = {("api", "127.0.0.1", 9000): {"ejected": True, "last_error": "connect refused"},
               ("api", "127.0.0.1", 9001): {"ejected": False, "inflight": 3}}
    watch.update(events, ejected)
    watch.update(events, ejected)
    watch.update(events, {})
    kinds = [(e.kind, e.backend, e.message) for e in events.recent()]
    assert kinds == [(EventKind.BACKEND_EJECTED, "127.0.0.1:9000", "ejected: connect refused"),
                     (EventKind.BACKEND_READMITTED, "127.0.0.1:9000", "readmitted")]


def test_a_backend_that_is_leaving_its_service_is_not_reported():
    events, watch = EventStream(), EjectionWatch()
    watch.update(events, {("", "127.0.0.1", 9000): {"ejected": True}})
    assert events.recent() == []
