"""Checks of `[proxy]` and `[[routes]]` that need more than one value: targets, apps, dirs."""

from __future__ import annotations

import errno
import os
import re
from dataclasses import replace
from pathlib import Path

from wharf.addresses import (
    SUN_PATH_MAX,
    bind_error,
    format_address,
    unix_address,
    unix_bind_problem,
    unix_path,
)
from wharf.config.converters import TOKEN
from wharf.config.model import (
    WILDCARD_HOSTS,
    AppConfig,
    ProxyConfig,
    RouteConfig,
    Server,
    ServiceConfig,
)
from wharf.config.schema import failed
from wharf.errors import Problem

_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")


def resolve_proxy(proxy: ProxyConfig, state_dir: Path, base: Path) -> ProxyConfig:
    """Fill in the access log path."""
    log = proxy.access_log_file
    log = (log if log.is_absolute() else base / log) if log else state_dir / "logs" / "access.log"
    return replace(proxy, access_log_file=log)


def resolve_unix(address: tuple[str, int], base: Path, key: str,
                 problems: list[Problem]) -> tuple[str, int]:
    """A Unix address with its path made absolute (relative to the config's directory),
    checked to fit in sun_path."""
    path = unix_path(*address)
    assert path is not None
    absolute = os.path.normpath(base / Path(path).expanduser())
    if len(os.fsencode(absolute)) > SUN_PATH_MAX:
        problems.append(Problem(key, f"the socket path is {len(os.fsencode(absolute))} bytes "
                                f"long ({absolute}): a Unix socket's path may have at most "
                                f"{SUN_PATH_MAX}; choose a shorter one"))
    return unix_address(absolute)


def resolve_servers(servers: tuple[Server, ...], base: Path, key: str,
                    problems: list[Problem]) -> tuple[Server, ...]:
    """The `servers` of a route or service (at `key`), Unix paths made absolute."""
    return tuple(Server(*resolve_unix((s.host, s.port), base, f"{key}.servers[{i}]", problems),
                        weight=s.weight) if s.port == 0 else s
                 for i, s in enumerate(servers))


def resolve_services(services: dict[str, ServiceConfig], base: Path,
                     problems: list[Problem]) -> dict[str, ServiceConfig]:
    """Each service's servers, Unix paths made absolute (relative to `base`)."""
    return {name: replace(service, servers=resolve_servers(service.servers, base,
                                                           f"services.{name}", problems))
            for name, service in services.items()}


def resolve_routes(routes: tuple[RouteConfig, ...], apps: dict[str, AppConfig], base: Path,
                   problems: list[Problem]) -> tuple[RouteConfig, ...]:
    """Check every route; make static directories absolute. A value already reported wrong
    (see schema.failed) is not checked again."""
    resolved = []
    for index, route in enumerate(routes):
        key = f"routes[{index}]"
        kind = route.target_kind()
        targets = ("service", "app", "servers", "static", "redirect")
        apps_unknown = any(p.path == "apps" for p in problems)  # `apps` is not a table
        if not kind and not any(failed(problems, f"{key}.{t}") for t in targets):
            problems.append(Problem(key, "needs exactly one of service, app, servers, static "
                                    "or redirect"))
        if route.app is not None and route.app not in apps \
                and not failed(problems, f"apps.{route.app}") and not apps_unknown:
            known = ", ".join(apps) or "none"
            problems.append(Problem(f"{key}.app", f"no app named {route.app!r} (apps: {known})"))
        route = replace(route, servers=resolve_servers(route.servers, base, key, problems))
        if route.static is not None:
            static = route.static if route.static.is_absolute() else base / route.static
            if not static.is_dir() or not os.access(static, os.R_OK | os.X_OK):
                problems.append(Problem(f"{key}.static", f"is not a readable directory: {static}"))
            route = replace(route, static=static.resolve())
        if route.redirect is not None and not route.redirect.startswith(("http://", "https://",
                                                                          "/")):
            problems.append(Problem(f"{key}.redirect", "must be a URL (http:// or https://) or "
                                    f"a path starting with '/', got {route.redirect!r}"))
        elif route.redirect is not None and not _VALUE.fullmatch(route.redirect):
            # It becomes a Location header: a CR or LF would end it and start another.
            problems.append(Problem(f"{key}.redirect", "must be a valid header value (no line "
                                    f"breaks or control characters), got {route.redirect!r}"))
        elif route.redirect is not None and route.redirect[1:2] in ("/", "\\", "{"):
            # `//host` is another host to a browser, and `/{path}` would make one of the path.
            problems.append(Problem(f"{key}.redirect", "a path must not start with '//', '/\\' "
                                    f"or '/{{': that is a URL of another host, got "
                                    f"{route.redirect!r}"))
        for field in ("headers", "add_request_headers", "add_response_headers"):
            for name, value in getattr(route, field).items():
                if not TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
                    problems.append(Problem(f"{key}.{field}.{name}",
                                            "is not a valid header name and value"))
        resolved.append(route)
    return tuple(resolved)


def _bound(proxy: ProxyConfig | None,
           apps: dict[str, AppConfig]) -> list[tuple[str, str, tuple[str, int]]]:
    """(key path, owner, address) of every address a config has the daemon bind."""
    found = [(f"proxy.listen[{i}]", "the proxy", address)
             for i, address in enumerate(proxy.listen if proxy else ())]
    found += [(f"proxy.listen_tls[{i}]", "the proxy", address)
              for i, address in enumerate(proxy.listen_tls if proxy else ())]
    found += [(f"apps.{a.name}.socket", f"app {a.name}", a.socket)
              for a in apps.values() if a.socket]
    return found


def bound_by(proxy: ProxyConfig | None,
             apps: dict[str, AppConfig]) -> dict[tuple[str, int], str]:
    """The addresses a config has the daemon bind, and whose they are."""
    return {address: owner for _, owner, address in _bound(proxy, apps)}


def listen_problems(proxy: ProxyConfig | None, apps: dict[str, AppConfig],
                    ours: dict[tuple[str, int], str] | None = None) -> list[Problem]:
    """The listen addresses and app sockets that cannot be bound now. `ours` has what this
    daemon holds already, by owner (a reload): an owner keeps its addresses, but one cannot
    take another's (nor its port on another host) before a later reload has freed it."""
    ours = ours or {}
    problems = []
    for key, owner, (host, port) in _bound(proxy, apps):
        holder = ours.get((host, port))
        if holder == owner:
            continue
        if holder is not None:
            problems.append(Problem(key, f"{format_address(host, port)} is still bound for "
                                    f"{holder}; free it in one reload and take it in the next"))
            continue
        path = unix_path(host, port)
        if path is not None:
            problem = unix_bind_problem(path)
            if problem is not None:
                problems.append(Problem(key, f"{path} {problem}"))
            continue
        exc = bind_error(host, port)
        if exc is not None:
            mine = [f"{o} on {h}" for (h, p), o in ours.items()
                    if p == port and (h == host or {h, host} & WILDCARD_HOSTS.keys())]
            reason = f"cannot be bound: {exc.strerror}"
            if exc.errno == errno.EADDRINUSE:
                reason = f"is already in use (by this daemon, for {', '.join(mine)}: free " \
                    "it in one reload and take it in the next)" if mine else "is already in use"
            problems.append(Problem(key, f"{host}:{port} {reason}"))
    return problems
