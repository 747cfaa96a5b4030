"""Deltas between snapshots: what the daemon sends a worker that already has a snapshot.

Theory of operation. A worker that connects gets the whole snapshot (`Snapshot.to_json`). The
publisher remembers, per worker, the snapshot it last sent on that connection; for each newer
one it sends `diff(sent, newest)`, which the worker turns back into the newest with
`patch(current, delta)`. Frames on one connection arrive in order, so the worker's current
snapshot is always the delta's base, however many versions the publisher skipped meanwhile
(a worker that reads slowly gets one delta over all of them). Pure code: no sockets.

A delta names the version it applies to (`base`) and carries only what changed:
- services: each new or changed service whole (its backends and settings), the names of those
  removed, and the order of every name only when it is not the base's order with the new ones
  at the end;
- routes: nothing if the match order is unchanged, else every route in order, each either the
  index of an equal route in the base or a new route whole (a few bytes per kept route);
- listeners, settings and TLS: each only if it changed.
Unchanged services and routes of the patched snapshot are the base's very objects, so the
worker can tell what changed by identity and rebuild only that (`wharf/proxy/plane.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from wharf.errors import WharfError
from wharf.registry.snapshot import (
    Route,
    Service,
    Settings,
    Snapshot,
    Tls,
    addresses_of,
    dumps,
    route_data,
    route_of,
    service_data,
    service_of,
    settings_data,
    settings_of,
    tls_data,
    tls_of,
)

Addresses = tuple[tuple[str, int], ...]


class DeltaError(WharfError):
    """A delta that does not apply to the snapshot at hand (its base is another version)."""


@dataclass(frozen=True, slots=True)
class Delta:
    """What turns the snapshot at version `base` into the one at `version`."""

    base: int
    version: int
    services: tuple[Service, ...] = ()  # new or changed, whole
    removed: tuple[str, ...] = ()  # services gone
    order: tuple[str, ...] | None = None  # every service name, when not the default order
    routes: tuple[int | Route, ...] | None = None  # None: unchanged; int: the base's route
    listen: Addresses | None = None  # None: unchanged, as the three below
    settings: Settings | None = None
    listen_tls: Addresses | None = None
    tls: Tls | None = None

    def to_json(self) -> bytes:
        """The delta as JSON; a full snapshot's JSON has no "base" key."""
        data: dict[str, Any] = {"base": self.base, "version": self.version,
                                "services": [service_data(s) for s in self.services]}
        if self.removed:
            data["removed"] = self.removed
        if self.order is not None:
            data["order"] = self.order
        if self.routes is not None:
            data["routes"] = [r if isinstance(r, int) else route_data(r) for r in self.routes]
        if self.listen is not None:
            data["listen"] = self.listen
        if self.settings is not None:
            data["settings"] = settings_data(self.settings)
        if self.listen_tls is not None:
            data["listen_tls"] = self.listen_tls
        if self.tls is not None:
            data["tls"] = tls_data(self.tls)
        return dumps(data)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Delta:
        """The delta of what `to_json` wrote, parsed."""
        routes = data.get("routes")
        return cls(
            base=data["base"], version=data["version"],
            services=tuple(service_of(s) for s in data["services"]),
            removed=tuple(data.get("removed", ())),
            order=tuple(data["order"]) if "order" in data else None,
            routes=None if routes is None else tuple(
                r if isinstance(r, int) else route_of(r) for r in routes),
            listen=addresses_of(data["listen"]) if "listen" in data else None,
            settings=settings_of(data["settings"]) if "settings" in data else None,
            listen_tls=addresses_of(data["listen_tls"]) if "listen_tls" in data else None,
            tls=tls_of(data["tls"]) if "tls" in data else None)

    def size(self) -> int:
        """How many services it adds, changes or removes."""
        return len(self.services) + len(self.removed)


def _same(a: object, b: object) -> bool:
    return a is b or a == b


def diff(base: Snapshot, target: Snapshot) -> Delta:
    """The delta that `patch` turns `base` into `target` with."""
    before = {s.name: s for s in base.services}
    changed = tuple(s for s in target.services
                    if (old := before.get(s.name)) is None or not _same(old, s))
    names = [s.name for s in target.services]
    wanted = set(names)
    removed = tuple(name for name in before if name not in wanted)
    fresh = [s.name for s in changed if s.name not in before]
    kept = [name for name in before if name in wanted]
    return Delta(
        base=base.version, version=target.version, services=changed, removed=removed,
        order=None if kept + fresh == names else tuple(names),
        routes=None if _same(base.routes, target.routes) else _route_list(base, target),
        listen=None if base.listen == target.listen else target.listen,
        settings=None if _same(base.settings, target.settings) else target.settings,
        listen_tls=None if base.listen_tls == target.listen_tls else target.listen_tls,
        tls=None if _same(base.tls, target.tls) else target.tls)


def _route_list(base: Snapshot, target: Snapshot) -> tuple[int | Route, ...]:
    index: dict[Route, int] = {}
    for i, route in enumerate(base.routes):
        index.setdefault(route, i)
    return tuple(index.get(r, r) for r in target.routes)


def patch(base: Snapshot, delta: Delta) -> Snapshot:
    """`base` with `delta` applied; raises DeltaError if `delta` is not for `base`."""
    if delta.base != base.version:
        raise DeltaError(f"a delta from snapshot {delta.base} came for snapshot "
                         f"{base.version}")
    if not (delta.services or delta.removed or delta.order):
        return _patched(base, delta, base.services)
    services = {s.name: s for s in base.services}
    for name in delta.removed:
        services.pop(name, None)
    for service in delta.services:
        services[service.name] = service
    if delta.order is not None:
        try:
            ordered = tuple(services[name] for name in delta.order)
        except KeyError as exc:
            raise DeltaError(f"a delta orders service {exc} that it does not have") from None
    else:
        ordered = tuple(services.values())
    return _patched(base, delta, ordered)


def _patched(base: Snapshot, delta: Delta, services: tuple[Service, ...]) -> Snapshot:
    routes = base.routes
    if delta.routes is not None:
        try:
            routes = tuple(base.routes[r] if isinstance(r, int) else r for r in delta.routes)
        except IndexError:
            raise DeltaError("a delta names a route its base does not have") from None
    return Snapshot(
        version=delta.version,
        listen=base.listen if delta.listen is None else delta.listen,
        settings=base.settings if delta.settings is None else delta.settings,
        routes=routes, services=services,
        listen_tls=base.listen_tls if delta.listen_tls is None else delta.listen_tls,
        tls=base.tls if delta.tls is None else delta.tls)


@dataclass(slots=True)
class Follower:
    """The worker's side of the snapshot socket: the snapshot it has, and what made it."""

    snapshot: Snapshot | None = None
    delta: Delta | None = None  # the last frame's, when it was a delta

    def take(self, payload: bytes) -> Snapshot:
        """The snapshot a frame's payload (whole or a delta against the current one) makes."""
        data: dict[str, Any] = json.loads(payload)
        if "base" in data:
            if self.snapshot is None:
                raise DeltaError("a delta came before any snapshot")
            self.delta = Delta.from_data(data)
            self.snapshot = patch(self.snapshot, self.delta)
        else:
            self.delta = None
            self.snapshot = Snapshot.from_data(data)
        return self.snapshot
