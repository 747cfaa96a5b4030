"""Compute a snapshot from the config and the instances that can take traffic now."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wharf.config.model import WILDCARD_HOSTS, AppConfig, Config, HealthConfig, ServiceConfig
from wharf.registry.snapshot import Backend, Route, Service, Settings, Snapshot, Tls
from wharf.registry.table import Source, Table, anonymous_names, merge

LOCALHOST = "127.0.0.1"

Address = tuple[str, int]
Ready = Mapping[str, Sequence[Address]]  # app -> where its instances that take traffic are


Target = tuple[str, str, int]  # (service, host, port): what health and ejection are kept by


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


def health_targets(table: Table, apps: Mapping[str, AppConfig], ready: Ready
                   ) -> dict[Target, HealthConfig]:
    """Every (service, host, port) that active health checks must watch, with its check. A
    backend's weight is not part of it: a change of weight keeps its health."""
    return {(name, b.host, b.port): service.health
            for name, service in table.services.items() if service.health is not None
            for b in service_backends(service, apps, ready)}


def instance_address(app: AppConfig, port: int) -> Address:
    """Where the proxy reaches an instance of `app` running on `port`: 127.0.0.1:port, or in
    socket mode the shared socket, which every instance on it serves (the kernel spreads the
    connections over them)."""
    if app.socket is None:
        return LOCALHOST, port
    host, socket_port = app.socket
    return WILDCARD_HOSTS.get(host, host), socket_port


def service_backends(service: ServiceConfig, apps: Mapping[str, AppConfig],
                     ready: Ready) -> tuple[Backend, ...]:
    """Every backend a service could use now: its servers, or the addresses of its app's ready
    instances."""
    if service.app:
        app = apps.get(service.app)  # absent if a reload could not add it
        weight = app.weight if app is not None else 1
        return tuple(Backend(host, port, weight) for host, port in ready.get(service.app, ()))
    return tuple(Backend(s.host, s.port, s.weight) for s in service.servers)


def build_snapshot(config: Config, version: int, ready: Ready,
                   down: frozenset[Target] = frozenset(), tls: Tls | None = None,
                   table: Table | None = None) -> Snapshot:
    """The snapshot for `config` and the routes and services of `table` (by default those of
    `config` alone): `ready[app]` lists the addresses of the app's instances that take traffic
    (see `instance_address`), `down` the (service, host, port) that active health checks have
    taken out, `tls` the certificates and settings of the TLS listeners (see
    `wharf.certs.material.build_tls`)."""
    table = table if table is not None else config_table(config)
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
    services = tuple(_service(name, sc, config.apps, ready, down)
                     for name, sc in table.services.items())
    routes = []
    for rc in table.routes:
        routes.append(Route(
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
            buffering=rc.buffering, max_temp_file_size=rc.max_temp_file_size))
    return Snapshot(version=version, listen=proxy.listen, settings=settings,
                    routes=tuple(routes), services=services,
                    listen_tls=proxy.listen_tls, tls=tls or Tls())


def _service(name: str, sc: ServiceConfig, apps: Mapping[str, AppConfig], ready: Ready,
             down: frozenset[Target]) -> Service:
    backends = tuple(b for b in service_backends(sc, apps, ready)
                     if (name, b.host, b.port) not in down)
    return Service(name, backends, balance=sc.balance, hash_key=sc.hash_key, cookie=sc.cookie,
                   max_conns=sc.max_conns, queue_timeout=sc.queue_timeout, retries=sc.retries,
                   retry_budget=sc.retry_budget, eject_after=sc.eject_after,
                   ejection=sc.ejection, slow_start=sc.slow_start)
