"""Compute a snapshot from the config and the instances that can take traffic now."""

from __future__ import annotations

from wharf.config.model import WILDCARD_HOSTS, AppConfig, Config, HealthConfig, RouteConfig
from wharf.registry.snapshot import Backend, Route, Service, Settings, Snapshot, Tls

LOCALHOST = "127.0.0.1"

Address = tuple[str, int]


Target = tuple[str, str, int]  # (service, host, port): what health and ejection are kept by


def service_names(config: Config) -> list[str | None]:
    """The service of each route, in route order (None for a route with no backends).

    A service is named for what it balances over, never for its position, so that inserting
    or moving a route keeps every service's health, queue and retry budget: `app:NAME` for a
    route to an app, `route:HOSTPATH` for a route with `servers`. Routes with the same name,
    backends and balancing settings share one service; a route that differs (two routes to
    one app balanced two ways) is another service, `NAME#2`, `#3`, numbered in route order.
    """
    names: list[str | None] = []
    groups: dict[tuple[object, ...], str] = {}
    taken: dict[str, int] = {}
    for rc in config.routes:
        if not (rc.app or rc.servers):
            names.append(None)
            continue
        label = f"app:{rc.app}" if rc.app else f"route:{rc.host or ''}{rc.path}"
        key = (label, rc.servers, rc.balance, rc.hash_key,
               rc.cookie, rc.max_conns, rc.queue_timeout, rc.retries, rc.retry_budget,
               rc.eject_after, rc.ejection, rc.slow_start, rc.health)
        name = groups.get(key)
        if name is None:
            count = taken[label] = taken.get(label, 0) + 1
            name = groups[key] = label if count == 1 else f"{label}#{count}"
        names.append(name)
    return names


def health_targets(config: Config, ready: dict[str, list[Address]]
                   ) -> dict[Target, HealthConfig]:
    """Every (service, host, port) that active health checks must watch, with its check. A
    backend's weight is not part of it: a change of weight keeps its health."""
    return {(name, b.host, b.port): rc.health
            for name, rc in zip(service_names(config), config.routes, strict=True)
            if name is not None and rc.health is not None
            for b in route_backends(config, rc, ready)}


def instance_address(app: AppConfig, port: int) -> Address:
    """Where the proxy reaches an instance of `app` running on `port`: 127.0.0.1:port, or in
    socket mode the shared socket, which every instance on it serves (the kernel spreads the
    connections over them)."""
    if app.socket is None:
        return LOCALHOST, port
    host, socket_port = app.socket
    return WILDCARD_HOSTS.get(host, host), socket_port


def route_backends(config: Config, route: RouteConfig,
                   ready: dict[str, list[Address]]) -> tuple[Backend, ...]:
    """Every backend a route could use now: its servers, or the addresses of its app's ready
    instances."""
    if route.app:
        app = config.apps.get(route.app)  # absent if a reload could not add it
        weight = app.weight if app is not None else 1
        return tuple(Backend(host, port, weight) for host, port in ready.get(route.app, ()))
    return tuple(Backend(s.host, s.port, s.weight) for s in route.servers)


def build_snapshot(config: Config, version: int, ready: dict[str, list[Address]],
                   down: frozenset[Target] = frozenset(), tls: Tls | None = None) -> Snapshot:
    """The snapshot for `config`: `ready[app]` lists the addresses of the app's instances that
    take traffic (see `instance_address`), `down` the (service, host, port) that active health
    checks have taken out, `tls` the certificates and settings of the TLS listeners (see
    `wharf.certs.material.build_tls`)."""
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
    services: dict[str, Service] = {}
    routes = []
    for name, rc in zip(service_names(config), config.routes, strict=True):
        if name is not None and name not in services:
            backends = tuple(b for b in route_backends(config, rc, ready)
                             if (name, b.host, b.port) not in down)
            services[name] = Service(
                name, backends, balance=rc.balance, hash_key=rc.hash_key, cookie=rc.cookie,
                max_conns=rc.max_conns, queue_timeout=rc.queue_timeout, retries=rc.retries,
                retry_budget=rc.retry_budget, eject_after=rc.eject_after, ejection=rc.ejection,
                slow_start=rc.slow_start)
        routes.append(Route(
            path=rc.path, host=rc.host, methods=rc.methods,
            headers=tuple((k.lower(), v) for k, v in rc.headers.items()), service=name,
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
                    routes=tuple(routes), services=tuple(services.values()),
                    listen_tls=proxy.listen_tls, tls=tls or Tls())
