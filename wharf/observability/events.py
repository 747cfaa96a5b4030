"""The event stream: what happened in the daemon, one typed record each.

Theory of operation: the daemon owns one `EventStream`. Whoever sees something happen (the
supervisor's state changes, readiness, health checks, the workers' ejection reports, a reload,
later the certificate manager) calls `emit(kind, message, app=..., ...)`. The stream keeps the
last RING_SIZE events in a ring buffer for `wharf events` and hands each new one to every
subscriber. A subscriber's queue is bounded: when it is full, the event is dropped for that
subscriber (it is told how many it missed), so a slow reader never blocks the daemon and never
makes it hold more than MAX_PENDING events for it.

Adding a kind: a member of `EventKind` (its value is the stable name seen in `--json` and the
HTTP API; docs/observability.md lists them) and a call to `emit` where it happens.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

# The history `wharf events` shows: about an hour of a busy daemon's changes, a few hundred KiB.
RING_SIZE = 1000
# Events waiting for one subscriber before new ones are dropped for it (a stalled client).
MAX_PENDING = 1000


class EventKind(Enum):
    """What happened; the value is the stable name of the kind."""

    DAEMON_STARTED = "daemon.started"
    DAEMON_STOPPING = "daemon.stopping"
    INSTANCE_STARTED = "instance.started"  # a process was spawned (STARTING)
    INSTANCE_RUNNING = "instance.running"  # it stayed up for startsecs
    INSTANCE_READY = "instance.ready"  # it takes traffic (readiness passed)
    INSTANCE_DRAINING = "instance.draining"  # out of the pool, requests in flight finishing
    INSTANCE_DRAINED = "instance.drained"  # no request in flight left (or drain_timeout)
    INSTANCE_EXITED = "instance.exited"  # the process ended (code or signal)
    INSTANCE_BACKOFF = "instance.backoff"  # a failed start; the next try is due later
    INSTANCE_FATAL = "instance.fatal"  # gave up starting it
    INSTANCE_STOPPING = "instance.stopping"
    INSTANCE_STOPPED = "instance.stopped"
    INSTANCE_RESTART = "instance.restart"  # the daemon restarts it on its own (max_memory)
    HEALTH_UP = "health.up"  # active health checks passed `rise` times
    HEALTH_DOWN = "health.down"  # they failed `fall` times
    BACKEND_EJECTED = "backend.ejected"  # a proxy worker ejected it (passive: errors in a row)
    BACKEND_READMITTED = "backend.readmitted"  # no worker ejects it any more
    ROLL_STARTED = "roll.started"  # replacing an app's instances (reload APP, restart, change)
    ROLL_DONE = "roll.done"
    ROLL_FAILED = "roll.failed"
    SCALE_DONE = "scale.done"
    RELOAD_STEP = "reload.step"  # one step of a config reload (add, remove, roll, scale)
    CONFIG_RELOADED = "config.reloaded"
    CONFIG_REFUSED = "config.refused"  # a reload found the file invalid: nothing changed
    CERTIFICATE_ISSUED = "certificate.issued"  # for the TLS manager
    CERTIFICATE_RENEWED = "certificate.renewed"
    CERTIFICATE_FAILED = "certificate.failed"
    CERTIFICATE_EXPIRING = "certificate.expiring"


# Kinds that say something went wrong: `wharf events` marks them, a dashboard may colour them.
WARNING_KINDS = frozenset({
    EventKind.INSTANCE_EXITED, EventKind.INSTANCE_BACKOFF, EventKind.INSTANCE_FATAL,
    EventKind.HEALTH_DOWN, EventKind.BACKEND_EJECTED, EventKind.ROLL_FAILED,
    EventKind.CONFIG_REFUSED, EventKind.CERTIFICATE_FAILED, EventKind.CERTIFICATE_EXPIRING,
})


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. Fields that do not apply are None."""

    seq: int  # 1, 2, 3... in this daemon's life: a client that reconnects asks for seq > N
    time: float  # Unix time, seconds
    kind: EventKind
    message: str  # one line for a person
    app: str | None = None
    instance: int | None = None
    pid: int | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    service: str | None = None
    backend: str | None = None  # "host:port"
    certificate: str | None = None  # a certificate's name (its first domain)

    @property
    def level(self) -> str:
        """"warning" for the kinds that say something went wrong, else "info"."""
        return "warning" if self.kind in WARNING_KINDS else "info"

    def to_json(self) -> dict[str, Any]:
        """The event as the `--json` output and the HTTP API give it (a stable interface)."""
        return {"seq": self.seq, "time": round(self.time, 6), "kind": self.kind.value,
                "level": self.level, "message": self.message, "app": self.app,
                "instance": self.instance, "pid": self.pid, "exit_code": self.exit_code,
                "exit_signal": self.exit_signal, "service": self.service,
                "backend": self.backend, "certificate": self.certificate}

    def line(self) -> str:
        """One line for a terminal: time, kind, subject, message."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.time))
        millis = int(self.time * 1000) % 1000
        subject = self.subject()
        return f"{stamp}.{millis:03d} {self.kind.value:<19} {subject + ' ' if subject else ''}" \
               f"{self.message}"

    def subject(self) -> str:
        """What the event is about: `web.0`, `svc 127.0.0.1:8000`, a certificate, or ""."""
        if self.app is not None and self.instance is not None:
            return f"{self.app}.{self.instance}"
        if self.service is not None:
            return f"{self.service} {self.backend}" if self.backend else self.service
        return self.certificate or self.app or ""


class Subscription:
    """A subscriber's bounded queue of events; iterate it with `async for`."""

    def __init__(self, stream: EventStream, maxsize: int) -> None:
        self._stream = stream
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0  # events this subscriber missed, being too slow

    def offer(self, event: Event) -> None:
        """Queue an event, or count it as dropped if the queue is full."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> Event:
        """The next event (waits for one)."""
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        """The next event if one is queued, else None."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        """Stop receiving events."""
        self._stream.unsubscribe(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.get()


class EventStream:
    """The daemon's events: the recent ones in a ring, the new ones to every subscriber."""

    def __init__(self, ring_size: int = RING_SIZE,
                 clock: Callable[[], float] = time.time) -> None:
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._subscribers: list[Subscription] = []
        self._clock = clock
        self._seq = 0

    def __repr__(self) -> str:
        return f"<EventStream seq={self._seq} kept={len(self._ring)} " \
               f"subscribers={len(self._subscribers)}>"

    def emit(self, kind: EventKind, message: str, **fields: Any) -> Event:
        """Record that something happened; `fields` are Event's optional fields."""
        self._seq += 1
        event = Event(self._seq, self._clock(), kind, message, **fields)
        self._ring.append(event)
        for subscriber in self._subscribers:
            subscriber.offer(event)
        return event

    def recent(self, count: int | None = None, after: int = 0) -> list[Event]:
        """The last `count` events kept (all if None), oldest first, with seq > `after`."""
        events = [e for e in self._ring if e.seq > after]
        return events if count is None else events[-count:] if count else []

    def subscribe(self, maxsize: int = MAX_PENDING) -> Subscription:
        """A queue that receives every event from now on; close it when done."""
        subscription = Subscription(self, maxsize)
        self._subscribers.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop sending events to `subscription` (no error if it is not subscribed)."""
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)

