"""Compute a snapshot from the config and the instances that can take traffic now.

A `BuildCache` kept from one build to the next makes a build cost what changed: a service
whose inputs (its config, its app's weight and ready addresses, which of its backends are
down) are the same as last time is the very `Service` object of last time, and a route from
the same `RouteConfig` the same `Route`. That is what lets `delta.diff` and the workers tell
unchanged pieces apart by identity, at 1,000 services as at one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wharf.config.model import (
    WILDCARD_HOSTS,
    AppConfig,
    Config,
    HealthConfig,
    RouteConfig,
    ServiceConfig,
)
from wharf.registry.snapshot import Backend, Route, Service, Settings, Snapshot, Tls
from wharf.registry.table import Source, Table, anonymous_names, merge

LOCALHOST = "127.0.0.1"

Address = tuple[str, int]
Ready = Mapping[str, Sequence[Address]]  # app -> where its instances that take traffic are
Remote = Mapping[str, Sequence[Backend]]  # app -> its instances on the other hosts ([cluster])
NO_REMOTE: Remote = {}


Target = tuple[str, str, int]  # (service, host, port): what health and ejection are kept by
# What a service's Service is made of: its config, its app's weight, its app's ready addresses
# here and (scope = "cluster") on the other hosts, and which of its backends are down.
Inputs = tuple[ServiceConfig, int, tuple[Address, ...], tuple[Backend, ...], frozenset[Address]]


@dataclass(slots=True)
class BuildCache:
    """The pieces of the last build, by what they were made of (see the module's doc)."""

    services: dict[str, tuple[Inputs, Service]] = field(default_factory=dict)
    routes: dict[tuple[str | None, str, str | None], tuple[RouteConfig, Route]] = field(
        default_factory=dict)  # by (host, path, service)
    settings: Settings | None = None


def service_names(config: Config) -> list[str | None]:
    """The service of each route of `config` alone, in route order (see
    `table.anonymous_names`)."""
    return anonymous_names(config.routes)


def config_table(config: Config) -> Table:
    """The table of `config` alone (no provider)."""
    return merge([config_source(config)])


def config_source(config: Config) -> Source:
    """The routes and services of the config file, as a source of the registry."""
    return Source(config.path.name, config.routes, config.services)


def health_targets(table: Table, apps: Mapping[str, AppConfig], ready: Ready,
                   remote: Remote = NO_REMOTE) -> dict[Target, HealthConfig]:
    """Every (service, host, port) that active health checks must watch, with its check. A
    backend's weight is not part of it: a change of weight keeps its health."""
    return {(name, b.host, b.port): service.health
            for name, service in table.services.items() if service.health is not None
            for b in service_backends(service, apps, ready, remote)}


def instance_address(app: AppConfig, port: int) -> Address:
    """Where the proxy reaches an instance of `app` running on `port`: 127.0.0.1:port, or in
    socket mode the shared socket, which every instance on it serves (the kernel spreads the
    connections over them)."""
    if app.socket is None:
        return LOCALHOST, port
    host, socket_port = app.socket
    return WILDCARD_HOSTS.get(host, host), socket_port


def service_backends(service: ServiceConfig, apps: Mapping[str, AppConfig],
                     ready: Ready, remote: Remote = NO_REMOTE) -> tuple[Backend, ...]:
    """Every backend a service could use now: its servers, or the addresses of its app's ready
    instances (with `scope = "cluster"`, those of the other hosts after this one's)."""
    if service.app:
        app = apps.get(service.app)  # absent if a reload could not add it
        weight = app.weight if app is not None else 1
        local = tuple(Backend(host, port, weight) for host, port in ready.get(service.app, ()))
        return local + tuple(remote.get(service.app, ())) if service.scope == "cluster" \
            else local
    return tuple(Backend(s.host, s.port, s.weight) for s in service.servers)


def build_snapshot(config: Config, version: int, ready: Ready,
                   down: frozenset[Target] = frozenset(), tls: Tls | None = None,
                   table: Table | None = None, cache: BuildCache | None = None,
                   remote: Remote = NO_REMOTE) -> Snapshot:
    """The snapshot for `config` and the routes and services of `table` (by default those of
    `config` alone): `ready[app]` lists the addresses of the app's instances that take traffic
    (see `instance_address`), `down` the (service, host, port) that active health checks have
    taken out, `tls` the certificates and settings of the TLS listeners (see
    `wharf.certs.material.build_tls`), `remote[app]` the app's instances on the other hosts
    of `[cluster]`. `cache` (updated) holds the last build's pieces, to reuse those whose
    inputs are the same."""
    table = table if table is not None else config_table(config)
    cache = cache if cache is not None else BuildCache()
    assert config.proxy is not None
    proxy = config.proxy
    t = proxy.timeouts
    settings = Settings(
        connect_timeout=t.connect, header_timeout=t.header, idle_timeout=t.idle,
        upstream_timeout=t.upstream, max_header_size=proxy.max_header_size,
        max_body_size=proxy.max_body_size, access_log=proxy.access_log,
        access_log_file=str(proxy.access_log_file) if proxy.access_log_file else None,
        access_log_max_size=proxy.access_log_max_size, access_log_backups=proxy.access_log_backups,
        trusted_proxies=proxy.trusted_proxies, pool_max_idle=proxy.pool_max_idle,
        pool_idle_timeout=proxy.pool_idle_timeout,
        underscores_in_headers=proxy.underscores_in_headers, metrics=config.admin is not None)
    if settings == cache.settings:
        settings = cache.settings
    cache.settings = settings
    down_of: dict[str, set[Address]] = {}
    for name, host, port in down:
        down_of.setdefault(name, set()).add((host, port))
    services = []
    made: dict[str, tuple[Inputs, Service]] = {}
    for name, sc in table.services.items():
        app = config.apps.get(sc.app) if sc.app else None  # absent if a reload could not add it
        inputs = (sc, app.weight if app is not None else 1,
                  tuple(ready.get(sc.app, ())) if sc.app else (),
                  tuple(remote.get(sc.app, ())) if sc.app and sc.scope == "cluster" else (),
                  frozenset(down_of.get(name, ())))
        last = cache.services.get(name)
        service = last[1] if last is not None and last[0] == inputs else \
            _service(name, sc, config.apps, ready, inputs[4], remote)
        made[name] = (inputs, service)
        services.append(service)
    cache.services = made
    routes = []
    kept: dict[tuple[str | None, str, str | None], tuple[RouteConfig, Route]] = {}
    for rc in table.routes:
        key = (rc.host, rc.path, rc.service)
        found = cache.routes.get(key)
        route = found[1] if found is not None and (found[0] is rc or found[0] == rc) \
            else _route(rc)
        kept[key] = (rc, route)
        routes.append(route)
    cache.routes = kept
    return Snapshot(version=version, listen=proxy.listen, settings=settings,
                    routes=tuple(routes), services=tuple(services),
                    listen_tls=proxy.listen_tls, tls=tls or Tls())


def _route(rc: RouteConfig) -> Route:
    return Route(
        path=rc.path, host=rc.host, methods=rc.methods,
        headers=tuple((k.lower(), v) for k, v in rc.headers.items()), service=rc.service,
        static=str(rc.static) if rc.static else None, redirect=rc.redirect,
        redirect_code=rc.redirect_code, strip_prefix=rc.strip_prefix,
        add_request_headers=tuple(rc.add_request_headers.items()),
        remove_request_headers=rc.remove_request_headers,
        add_response_headers=tuple(rc.add_response_headers.items()),
        remove_response_headers=rc.remove_response_headers,
        rate=rc.rate_limit.rate if rc.rate_limit else 0.0,
        burst=rc.rate_limit.burst if rc.rate_limit else 1, upgrade=rc.upgrade,
        buffering=rc.buffering, max_temp_file_size=rc.max_temp_file_size)


def _service(name: str, sc: ServiceConfig, apps: Mapping[str, AppConfig], ready: Ready,
             down: frozenset[Address], remote: Remote) -> Service:
    backends = service_backends(sc, apps, ready, remote)
    if down:
        backends = tuple(b for b in backends if (b.host, b.port) not in down)
    if sc.prefer == "local":  # the other hosts' instances are backups (HAProxy's `backup`)
        local = set(ready.get(sc.app or "", ()))
        backends = tuple(b for b in backends if (b.host, b.port) in local) or backends
    return Service(name, backends, balance=sc.balance, hash_key=sc.hash_key, cookie=sc.cookie,
                   max_conns=sc.max_conns, queue_timeout=sc.queue_timeout, retries=sc.retries,
                   retry_budget=sc.retry_budget, eject_after=sc.eject_after,
                   ejection=sc.ejection, slow_start=sc.slow_start)
