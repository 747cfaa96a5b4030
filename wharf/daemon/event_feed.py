"""What the daemon sees, as events: its instances' state changes, the pool, the workers'
ejections. The translations are pure: the daemon calls them where it learns of a change and
emits what they return (see `wharf.observability.events`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wharf.addresses import format_address
from wharf.observability.events import EventKind, EventStream
from wharf.registry.reports import Key
from wharf.supervise.instance import Instance
from wharf.supervise.states import State

_KINDS = {State.STARTING: EventKind.INSTANCE_STARTED, State.RUNNING: EventKind.INSTANCE_RUNNING,
          State.EXITED: EventKind.INSTANCE_EXITED, State.BACKOFF: EventKind.INSTANCE_BACKOFF,
          State.FATAL: EventKind.INSTANCE_FATAL, State.STOPPING: EventKind.INSTANCE_STOPPING,
          State.STOPPED: EventKind.INSTANCE_STOPPED}


def instance_fields(instance: Instance) -> dict[str, Any]:
    """The fields that name an instance in an event."""
    return {"app": instance.app.name, "instance": instance.index,
            "pid": instance.pid or instance.last_pid or None}


def change_detail(instance: Instance, old: State, new: State, now: float) -> str:
    """What the log line of a state change says after the states: the pid of a start, the
    exit status, the reason of a BACKOFF or FATAL, when the next try is (`now` is the
    loop's clock)."""
    m = instance.machine
    detail = ""
    if new == State.STARTING or (new == State.RUNNING and old == State.STOPPED):
        detail = f" pid {instance.pid}" if instance.pid else ""
    elif new == State.EXITED and m.last_exit is not None:
        detail = f" ({m.last_exit})"
    elif new in (State.BACKOFF, State.FATAL) and m.reason:
        detail = f" ({m.reason})"
    if new == State.BACKOFF and m.deadline is not None:
        detail += f", next try in {max(0.0, m.deadline - now):.1f}s"
    return detail


def emit_state_change(events: EventStream, instance: Instance, old: State, new: State,
                      detail: str) -> None:
    """Emit the event of one instance's state change; `detail` is what the log line says
    after the states (a pid, an exit status, a reason)."""
    kind = _KINDS[new]
    fields = instance_fields(instance)
    last = instance.machine.last_exit
    exited = new in (State.EXITED, State.BACKOFF, State.FATAL) or old == State.STOPPING
    if exited and last is not None:
        fields.update(exit_code=last.code, exit_signal=last.signal,
                      pid=instance.exited_pid or fields["pid"])
    text = f"{old.value} -> {new.value}{detail}"
    events.emit(kind, text, **fields)


@dataclass(slots=True)
class PoolWatch:
    """Notices the instances that join the pool (take traffic), to say when each is ready."""

    seen: set[tuple[str, int, int]] = field(default_factory=set)  # (app, index, pid)

    def update(self, events: EventStream, serving: Iterable[Instance]) -> None:
        """`serving`: every instance of a routed app that takes traffic now."""
        now = {(i.app.name, i.index, i.pid or 0): i for i in serving}
        for key in now.keys() - self.seen:
            events.emit(EventKind.INSTANCE_READY, "takes traffic", **instance_fields(now[key]))
        self.seen = set(now)


@dataclass(slots=True)
class EjectionWatch:
    """Notices the backends that the workers eject (passive health) and readmit."""

    ejected: set[Key] = field(default_factory=set)

    def update(self, events: EventStream, totals: Mapping[Key, Mapping[str, Any]]) -> None:
        """`totals`: what the workers last said of each backend (Publisher.backend_totals)."""
        now = {key for key, total in totals.items() if total.get("ejected") and key[0]}
        for service, host, port in sorted(now - self.ejected):
            error = str(totals[(service, host, port)].get("last_error") or "errors in a row")
            events.emit(EventKind.BACKEND_EJECTED, f"ejected: {error}", service=service,
                        backend=format_address(host, port))
        for service, host, port in sorted(self.ejected - now):
            events.emit(EventKind.BACKEND_READMITTED, "readmitted", service=service,
                        backend=format_address(host, port))
        self.ejected = now
