"""Checks of `[services.NAME]` and of the routes that name them, for `wharf.toml` and for the
files of the file provider alike (each reports into its own list of problems)."""

from __future__ import annotations

import re
from typing import Any

from wharf.config.balancing import BALANCING_KEYS
from wharf.config.model import AppConfig, RouteConfig, ServiceConfig
from wharf.config.schema import failed, suggestion
from wharf.errors import Problem

# As app names; never `:` or `#`, which name the anonymous services (`app:web`, `route:/x#2`).
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_services(services: dict[str, ServiceConfig], raw: Any, apps: dict[str, AppConfig],
                   problems: list[Problem]) -> None:
    """Each service: a valid name, exactly one of app and servers, an app that exists."""
    for name in raw if isinstance(raw, dict) else ():
        if not SERVICE_NAME.match(name):
            problems.append(Problem(f"services.{name}", "service names use letters, digits, "
                                    "'.', '_' and '-' (at most 64), starting with a letter or "
                                    "digit"))
    for name, service in services.items():
        key = f"services.{name}"
        if bool(service.app) == bool(service.servers) and not failed(problems, f"{key}.app") \
                and not failed(problems, f"{key}.servers"):
            problems.append(Problem(key, "needs exactly one of app or servers"))
        if service.app and service.app not in apps and not failed(problems, "apps"):
            known = ", ".join(apps) or "none"
            problems.append(Problem(f"{key}.app", f"no app named {service.app!r} (apps: {known})"))


def check_scopes(services: dict[str, ServiceConfig], routes: tuple[RouteConfig, ...],
                 cluster: bool, problems: list[Problem]) -> None:
    """`scope = "cluster"` needs `[cluster]` and an app (servers are the same everywhere);
    `prefer = "local"` needs `scope = "cluster"` (with one host, every instance is local)."""
    where = [(f"services.{n}", s) for n, s in services.items()] + \
        [(f"routes[{i}]", r) for i, r in enumerate(routes) if r.service is None]
    for key, item in where:
        if item.scope == "cluster" and not cluster:
            problems.append(Problem(f"{key}.scope", "\"cluster\" needs a [cluster] table (its "
                                    "etcd endpoints and this host's name)"))
        if item.scope == "cluster" and item.servers:
            problems.append(Problem(f"{key}.scope", "\"cluster\" applies to an app's "
                                    "instances; servers are the same on every host"))
        if item.prefer != "none" and item.scope != "cluster":
            problems.append(Problem(f"{key}.prefer", "needs scope = \"cluster\" (on one host "
                                    "every instance is local)"))


def check_route_services(routes: tuple[RouteConfig, ...], raw: Any,
                         services: dict[str, ServiceConfig] | None,
                         problems: list[Problem]) -> None:
    """A route that names a service sets no balancing key of its own, and (when `services`
    is given: every service it may name) names one that exists."""
    raw_routes = raw if isinstance(raw, list) else []
    for index, route in enumerate(routes):
        if route.service is None:
            continue
        key = f"routes[{index}]"
        table = raw_routes[index] if index < len(raw_routes) else {}
        for own in [k for k in BALANCING_KEYS if isinstance(table, dict) and k in table]:
            problems.append(Problem(f"{key}.{own}", f"is a key of the service: set it in "
                                    f"[services.{route.service}] (a route that names a service "
                                    "does not balance on its own)"))
        if services is not None and route.service not in services \
                and not failed(problems, f"services.{route.service}") \
                and not any(p.path == "services" for p in problems):
            problems.append(Problem(f"{key}.service", unknown_service(route.service, services)))


def unknown_service(name: str, services: dict[str, ServiceConfig] | list[str]) -> str:
    """What to say of a route naming a service that is not defined."""
    known = list(services)
    near = suggestion(name, known)
    hint = f" (did you mean '{near}'?)" if near else \
        f" (services: {', '.join(known)})" if known else " (no [services] are defined)"
    return f"no service named {name!r}{hint}"
