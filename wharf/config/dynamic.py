"""The routes and services of a provider's file: the `routes` and `services` of `wharf.toml`,
in the same form, checked by the same schema walker and the same checks (every problem at
once, with its key path inside the file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wharf.config.load import read_toml
from wharf.config.model import AppConfig, RouteConfig, ServiceConfig
from wharf.config.proxy_checks import resolve_routes, resolve_services
from wharf.config.schema import decode
from wharf.config.service_checks import check_route_services, check_services
from wharf.errors import ConfigError, Problem


@dataclass(frozen=True, slots=True)
class DynamicConfig:
    """What a provider's file holds: routes and services, nothing that needs a restart."""

    routes: tuple[RouteConfig, ...] = ()
    services: dict[str, ServiceConfig] = field(default_factory=dict)


def load_dynamic(path: Path, apps: Mapping[str, AppConfig]
                 ) -> tuple[DynamicConfig | None, list[Problem]]:
    """Read and check one file; its content (None if any problem) and every problem. A
    route may name a service defined anywhere: the registry's merge reports one nobody
    defines. Relative `static` directories are beside the file."""
    try:
        data = read_toml(path)
    except ConfigError as exc:
        return None, list(exc.problems)
    return check_dynamic(data, path.parent, apps)


def check_dynamic(data: Any, base: Path, apps: Mapping[str, AppConfig]
                  ) -> tuple[DynamicConfig | None, list[Problem]]:
    """Check routes and services already parsed (a file's TOML, an etcd key's JSON) exactly
    as `wharf.toml`'s; relative `static` directories are in `base`."""
    problems: list[Problem] = []
    dynamic = decode(DynamicConfig, data, "", problems)
    if dynamic is None:
        return None, problems
    routes = resolve_routes(dynamic.routes, dict(apps), base, problems)
    services = resolve_services(dynamic.services, base, problems)
    check_services(services, data.get("services"), dict(apps), problems)
    check_route_services(routes, data.get("routes"), None, problems)
    return (None if problems else DynamicConfig(routes, services)), problems
