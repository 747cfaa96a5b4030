"""The Docker provider's sans-IO part: the engine's containers in, one `Update` out.

Theory of operation. The I/O shell (docker.py) keeps the engine's inspect answer
(`GET /containers/{id}/json`) of every container labelled `wharf.enable=true` that runs or is
paused, and after each change calls `containers_update` with them; nothing here touches a
socket or the clock.

Rules (docs/discovery.md, "Docker", says the same for users):
- Each container is a source of its own, `container NAME`, in the order they were created
  (then by name): the oldest comes first, so a newcomer cannot take an older one's route.
- A container *joins* when it is running, not paused, and, if it has a Docker health check,
  healthy. Until then it is known (a `waiting` issue says why) but defines nothing.
- Its labels are turned into the dict form of a provider file (`services.NAME` with one
  server, and a route if `wharf.host` or `wharf.path` is set) and checked by `check_dynamic`,
  the very checks of `wharf.toml`; a problem is reported at its label (`container web1: label
  wharf.port: ...`) and leaves that container out, never the others.
- The service is `wharf.service`, by default the container's name. Containers naming one
  service are its backends; the oldest one's service labels (balance, health, ...) are the
  service's, and a later container whose labels differ is left out and reported (containers
  of one service share its settings). The oldest carries the service in its source, and each
  route goes with the first container that declares it, so the merge sees each once.
- Address: the container's IP on its network (`wharf.network` picks one when it has several,
  else the first by name); with no IP (host networking) the configured `host`. Port:
  `wharf.port`, else the container's single exposed port (on a network) or its single
  published, else exposed, port (host networking).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, get_args, get_type_hints

from wharf.addresses import format_address
from wharf.config import converters as c
from wharf.config.balancing import BALANCING_KEYS, Balancing, HealthConfig
from wharf.config.dynamic import check_dynamic
from wharf.config.model import RouteConfig, Server, ServiceConfig
from wharf.config.schema import suggestion
from wharf.registry.provider import Update
from wharf.registry.table import Issue, Source

PROVIDER = "docker"
PREFIX = "wharf."
ENABLE = "wharf.enable"
# Labels of the container itself; every balancing key of a service is a label too
# (`wharf.balance`, `wharf.retries`, ...), and each key of its health check (`wharf.health.path`).
OWN_LABELS = ("wharf.enable", "wharf.service", "wharf.host", "wharf.path", "wharf.port",
              "wharf.weight", "wharf.network")
SERVICE_LABELS = {f"{PREFIX}{k}": k for k in BALANCING_KEYS if k != "health"}
HEALTH_LABELS = {f"{PREFIX}health.{f.name}": f.name for f in fields(HealthConfig)}
LABELS = (*OWN_LABELS, *SERVICE_LABELS, *HEALTH_LABELS)


def _base_types(cls: type) -> dict[str, Any]:
    """Each field's type without its `Annotated` converter (`int` for `retries`)."""
    return {name: get_args(hint)[0] if hasattr(hint, "__metadata__") else hint
            for name, hint in get_type_hints(cls, include_extras=True).items()}


_SERVICE_TYPES = _base_types(Balancing)
_HEALTH_TYPES = _base_types(HealthConfig)


@dataclass(frozen=True, slots=True)
class Container:
    """What the provider needs of one container's inspect answer."""

    id: str
    name: str
    created: str  # RFC 3339, as the engine gives it
    labels: Mapping[str, str]
    running: bool
    paused: bool
    health: str | None  # None: no Docker health check; else "starting", "healthy", ...
    ips: Mapping[str, str]  # network name -> the container's address on it
    exposed: tuple[int, ...]  # container-side TCP ports (EXPOSE, --expose, -p)
    published: tuple[int, ...]  # host-side TCP ports (-p)

    @property
    def source(self) -> str:
        """Its name in `status` and the log."""
        return f"container {self.name}"

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> Container:
        """From `GET /containers/{id}/json` (Docker's or podman's compatible one)."""
        config = data.get("Config") or {}
        state = data.get("State") or {}
        network = data.get("NetworkSettings") or {}
        check = config.get("Healthcheck") or {}
        has_check = bool(check.get("Test")) and check["Test"][0] != "NONE"
        health_status = (state.get("Health") or {}).get("Status") or ""
        ips = {name: net.get("IPAddress") or net.get("GlobalIPv6Address") or ""
               for name, net in (network.get("Networks") or {}).items()}
        ports = network.get("Ports") or {}
        exposed = {*(config.get("ExposedPorts") or {}), *ports}
        return cls(
            id=str(data.get("Id", "")), name=str(data.get("Name", "")).lstrip("/"),
            created=str(data.get("Created", "")), labels=dict(config.get("Labels") or {}),
            running=bool(state.get("Running")), paused=bool(state.get("Paused")),
            health=(health_status or "starting") if has_check or health_status else None,
            ips={n: ip for n, ip in sorted(ips.items()) if ip},
            exposed=_tcp_ports(exposed),
            published=tuple(sorted({int(b["HostPort"]) for p, bound in ports.items()
                                    if p.endswith("/tcp") for b in bound or ()
                                    if str(b.get("HostPort", "")).isdigit()})))

    def order(self) -> tuple[str, str, str]:
        """Oldest first (the fraction of a second padded: the engine trims its zeros)."""
        whole, _, fraction = self.created.partition(".")
        digits = "".join(ch for ch in fraction if ch.isdigit())
        return whole[:19], digits.ljust(9, "0"), self.name


def _tcp_ports(specs: Iterable[str]) -> tuple[int, ...]:
    ports = set()
    for spec in specs:
        number, _, proto = spec.partition("/")
        if number.isdigit() and proto in ("", "tcp"):
            ports.add(int(number))
    return tuple(sorted(ports))


def waiting(container: Container) -> str | None:
    """Why a known container does not take traffic now; None if it joins."""
    if container.paused:
        return "paused"
    if not container.running:
        return "not running"
    if container.health is not None and container.health != "healthy":
        return f"Docker health check: {container.health} (joins once healthy)"
    return None


def _typed(value: str, base: Any) -> Any:
    """A label's text as the config key would hold it: numbers and booleans converted where
    the key takes one ("3", "0.5", "true"), every other text as it is (so "10s" stays a
    duration and a bad value gets the key's own message)."""
    try:
        if base is bool and value in ("true", "false"):
            return value == "true"
        if base is int:
            return int(value)
        if base is float:
            return float(value)
    except ValueError:
        pass
    return value


@dataclass(frozen=True, slots=True)
class Definition:
    """What one container's labels define, checked."""

    container: Container
    service: ServiceConfig  # with this container as its one server
    settings: Mapping[str, str]  # its service labels (what containers of a service share)
    route: RouteConfig | None


def _port(container: Container, labels: Mapping[str, str]) -> tuple[int | None, str]:
    if "wharf.port" in labels:
        try:
            return c.integer(1, 65535)(_typed(labels["wharf.port"], int)), ""
        except ValueError as exc:
            return None, str(exc)
    ports = container.exposed if container.ips else container.published or container.exposed
    if len(ports) == 1:
        return ports[0], ""
    what = f"exposes {len(ports)} ports ({', '.join(map(str, ports))})" if ports else \
        "exposes no port"
    return None, f"must be set: the container {what}"


def _address(container: Container, labels: Mapping[str, str], host: str
             ) -> tuple[str | None, str]:
    if not container.ips:
        return host, ""  # host networking: its ports are the host's
    wanted = labels.get("wharf.network")
    if wanted is None:
        return next(iter(container.ips.values())), ""
    if wanted in container.ips:
        return container.ips[wanted], ""
    return None, f"no network {wanted!r} with an address (networks: " \
                 f"{', '.join(container.ips)})"


def define(container: Container, host: str) -> tuple[Definition | None, list[Issue]]:
    """What `container`'s labels define, checked as a provider file is; or every problem,
    each at its label."""
    labels = {k: v for k, v in container.labels.items() if k.startswith(PREFIX)}
    issues: list[Issue] = []

    def bad(label: str, message: str) -> None:
        key = f"label {label}" if label.startswith(PREFIX) else label
        if message.endswith(", got a string") and label in labels:  # every label is text
            message = message.removesuffix("a string") + repr(labels[label])
        issues.append(Issue(container.source, key, message, "invalid"))

    for label in labels:
        if label not in LABELS:
            near = suggestion(label, list(LABELS))
            bad(label, "unknown label" + (f" (did you mean {near}?)" if near else ""))
    port, why = _port(container, labels)
    if port is None:
        bad("wharf.port", why)
    address, why = _address(container, labels, host)
    if address is None:
        bad("wharf.network", why)
    name = labels.get("wharf.service", container.name)
    settings = {k: v for k, v in labels.items() if k in SERVICE_LABELS or k in HEALTH_LABELS}
    service: dict[str, Any] = {SERVICE_LABELS[k]: _typed(v, _SERVICE_TYPES[SERVICE_LABELS[k]])
                               for k, v in settings.items() if k in SERVICE_LABELS}
    health = {HEALTH_LABELS[k]: _typed(v, _HEALTH_TYPES[HEALTH_LABELS[k]])
              for k, v in settings.items() if k in HEALTH_LABELS}
    if health:
        service["health"] = health
    server: dict[str, Any] = {"address": format_address(address or host, port or 1)}
    if "wharf.weight" in labels:
        server["weight"] = _typed(labels["wharf.weight"], int)
    service["servers"] = [server]
    data: dict[str, Any] = {"services": {name: service}}
    route = {k: labels[f"{PREFIX}{k}"] for k in ("host", "path") if f"{PREFIX}{k}" in labels}
    if route:
        data["routes"] = [{**route, "service": name}]
    dynamic, problems = check_dynamic(data, Path("/"), {})
    where = {f"services.{name}": "wharf.service", "routes[0].host": "wharf.host",
             "routes[0].path": "wharf.path",
             f"services.{name}.servers": "wharf.weight" if "wharf.weight" in labels else "",
             **{f"services.{name}.{key}": label for label, key in SERVICE_LABELS.items()},
             **{f"services.{name}.health.{key}": label for label, key in HEALTH_LABELS.items()}}
    for problem in problems:
        known = [k for k in where if problem.path == k or problem.path.startswith(
            (f"{k}.", f"{k}["))]
        label = where[max(known, key=len)] if known else ""
        bad(label or problem.path, problem.message)
    if issues or dynamic is None:
        return None, issues
    return Definition(container, dynamic.services[name], settings,
                      dynamic.routes[0] if dynamic.routes else None), []


def _differs(first: Definition, other: Definition) -> list[Issue]:
    """The service labels in which `other` differs from the service's first container."""
    issues = []
    for label in sorted({*first.settings, *other.settings}):
        mine, theirs = other.settings.get(label), first.settings.get(label)
        if mine != theirs:
            shown = "unset" if theirs is None else repr(theirs)
            issues.append(Issue(other.container.source, f"label {label}",
                                f"{'unset' if mine is None else repr(mine)} differs from "
                                f"{shown} on {first.container.source}, the first of service "
                                f"{first.service.name} (containers of one service share its "
                                "settings)", "invalid"))
    return issues


def containers_update(containers: Iterable[Container], host: str) -> Update:
    """The provider's current set: a source per joined container, an issue per container
    that waits or is refused (see the rules above)."""
    known = sorted(containers, key=Container.order)
    issues: list[Issue] = []
    firsts: dict[str, Definition] = {}
    servers: dict[str, list[Server]] = {}
    joined: list[Definition] = []
    for container in known:
        why = waiting(container)
        if why is not None:
            issues.append(Issue(container.source, "", why, "waiting"))
            continue
        definition, problems = define(container, host)
        if definition is not None:
            first = firsts.setdefault(definition.service.name, definition)
            problems = _differs(first, definition)
        if problems or definition is None:
            issues += problems
            continue
        servers.setdefault(definition.service.name, []).extend(definition.service.servers)
        joined.append(definition)
    sources = []
    routed: list[RouteConfig] = []  # (not hashable: a route's headers are a dict)
    for definition in joined:
        name = definition.service.name
        defines = firsts[name] is definition
        route = definition.route
        routes = (route,) if route is not None and route not in routed else ()
        routed += routes
        services = {name: replace(definition.service, servers=tuple(servers[name]))} \
            if defines else {}
        sources.append(Source(definition.container.source, routes, services))
    return Update(PROVIDER, tuple(sources), tuple(issues), tuple(c.source for c in known))


def engine_lost(update: Update, engine: str, since: str, reason: str, reached: bool = True
                ) -> Update:
    """`update` (the last known set, still in force) with the engine's loss reported."""
    kept = "the last known containers stay in force" if reached else \
        "nothing was read from it yet"
    issue = Issue(engine, "", f"unreachable since {since} ({reason}); {kept}", "unreachable")
    return replace(update, issues=(issue, *update.issues), known=(engine, *update.known))
