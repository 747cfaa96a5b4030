"""Merge what every source says into one routing table. Pure code: sources in, table out.

Theory of operation. A *source* is one set of routes and services: `wharf.toml` ("config"),
or one unit of a provider (a file of the file provider, later a container, an etcd key). The
registry hands `merge` every source in precedence order: the config first, then each provider
in the order of `[providers]`, each provider's sources in its own order (files by name).

Rules:
- A service name is defined once: the first source to define it wins; any later definition
  is ignored and reported as a conflict (so the config always wins, then the first provider).
- A route is known by what it matches (host, path, methods, headers): the first source's
  wins; a later source's route matching the same requests is ignored and reported. (Within
  one source, as in wharf.toml, route order decides, as it always did.)
- A route that names a service nobody defines is left out and reported.
- A route's shorthand (`app = ...` / `servers = ...` with balancing keys) makes an anonymous
  service, named for what it balances over (`app:NAME`, `route:HOSTPATH`, see
  `anonymous_names`), never for a position: moving or adding routes renames nothing.
Every route of the table names its service in `.service` (None for static and redirects).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from wharf.config.balancing import BALANCING_KEYS
from wharf.config.model import RouteConfig, ServiceConfig
from wharf.config.service_checks import unknown_service


@dataclass(frozen=True, slots=True)
class Source:
    """One set of routes and services, as a provider sees it now."""

    name: str  # as the user knows it: "wharf.toml", "conf.d/a.toml"
    routes: tuple[RouteConfig, ...] = ()
    services: Mapping[str, ServiceConfig] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Issue:
    """Something wrong in a source: a definition the merge ignored ("conflict"), or what
    made a provider refuse the source's new content ("invalid"): which source, which key in
    it, and why."""

    source: str
    key: str
    message: str
    kind: str = "conflict"  # or "invalid"; "waiting", "unreachable" (see registry.ISSUE_STATES)

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.message}" if self.key else \
            f"{self.source}: {self.message}"


@dataclass(frozen=True, slots=True)
class Table:
    """The merged routes (each naming its service) and the services they name, by name (a
    service no route names is not in it: nothing would reach it)."""

    routes: tuple[RouteConfig, ...] = ()
    origins: tuple[str, ...] = ()  # the source of each route
    services: Mapping[str, ServiceConfig] = field(default_factory=dict)
    conflicts: tuple[Issue, ...] = ()

    def apps(self) -> frozenset[str]:
        """The apps some service balances over."""
        return frozenset(s.app for s in self.services.values() if s.app)


def _match_key(route: RouteConfig) -> tuple[object, ...]:
    return route.host, route.path, tuple(sorted(route.methods)), tuple(sorted(
        route.headers.items()))


def _describe(route: RouteConfig) -> str:
    return f"{route.host or ''}{route.path}"


def merge(sources: Sequence[Source]) -> Table:
    """The table of `sources`, in precedence order (see the rules above)."""
    conflicts: list[Issue] = []
    services: dict[str, ServiceConfig] = {}
    defined_by: dict[str, str] = {}
    for source in sources:
        for name, service in source.services.items():
            if name in services:
                conflicts.append(Issue(source.name, f"services.{name}", f"ignored: the "
                                       f"service is defined by {defined_by[name]}"))
                continue
            services[name], defined_by[name] = service, source.name
    routes: list[RouteConfig] = []
    origins: list[str] = []
    matched_by: dict[tuple[object, ...], str] = {}
    for source in sources:
        for index, route in enumerate(source.routes):
            key = f"routes[{index}]"
            first = matched_by.get(_match_key(route))
            if first is not None and first != source.name:  # in one source: its order decides
                conflicts.append(Issue(source.name, key, f"ignored: {_describe(route)} is "
                                       f"routed by {first}"))
                continue
            if route.service is not None and route.service not in services:
                conflicts.append(Issue(source.name, f"{key}.service",
                                       f"left out: {unknown_service(route.service, services)}"))
                continue
            matched_by[_match_key(route)] = source.name
            routes.append(route)
            origins.append(source.name)
    used: dict[str, ServiceConfig] = {}  # in the order of the routes, as the workers see them
    named = []
    for route, label in zip(routes, anonymous_names(routes), strict=True):
        if label is not None and label not in used:
            used[label] = services[label] if route.service else shorthand_service(route, label)
        # (the route itself when it names its service: the build reuses what it made of it)
        named.append(route if route.service == label else replace(route, service=label))
    return Table(tuple(named), tuple(origins), used, tuple(conflicts))


def shorthand_service(route: RouteConfig, name: str) -> ServiceConfig:
    """The anonymous service of a route's `app`/`servers` shorthand."""
    return ServiceConfig(name=name, app=route.app, servers=route.servers,
                         **{k: getattr(route, k) for k in BALANCING_KEYS})


def anonymous_names(routes: Sequence[RouteConfig]) -> list[str | None]:
    """The service of each route, in route order: its named service, or for a shorthand the
    anonymous one; None for a route with no backends.

    An anonymous service is named for what it balances over, never for its position, so that
    inserting or moving a route keeps every service's health, queue and retry budget:
    `app:NAME` for a route to an app, `route:HOSTPATH` for a route with `servers`. Routes with
    the same name, backends and balancing settings share one service; a route that differs
    (two routes to one app balanced two ways) is another service, `NAME#2`, `#3`, numbered in
    route order.
    """
    names: list[str | None] = []
    groups: dict[tuple[object, ...], str] = {}
    taken: dict[str, int] = {}
    for rc in routes:
        if rc.service is not None or not (rc.app or rc.servers):
            names.append(rc.service)
            continue
        label = f"app:{rc.app}" if rc.app else f"route:{rc.host or ''}{rc.path}"
        key = (label, rc.servers, rc.balancing())
        name = groups.get(key)
        if name is None:
            count = taken[label] = taken.get(label, 0) + 1
            name = groups[key] = label if count == 1 else f"{label}#{count}"
        names.append(name)
    return names
