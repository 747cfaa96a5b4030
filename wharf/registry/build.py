"""Compute a snapshot from the config and the instances that can take traffic now."""

from __future__ import annotations

from wharf.config.model import WILDCARD_HOSTS, AppConfig, Config, RouteConfig
from wharf.registry.snapshot import Backend, Route, Service, Settings, Snapshot

LOCALHOST = "127.0.0.1"

Address = tuple[str, int]


def service_name(index: int) -> str:
    """The service of route number `index`: each route balances its own way."""
    return f"route:{index}"


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
                   down: frozenset[tuple[str, Backend]] = frozenset()) -> Snapshot:
    """The snapshot for `config`: `ready[app]` lists the addresses of the app's instances that
    take traffic (see `instance_address`), `down` the (service, backend) pairs that active
    health checks have taken out."""
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
        underscores_in_headers=proxy.underscores_in_headers)
    services: dict[str, Service] = {}
    routes = []
    for index, rc in enumerate(config.routes):
        name = None
        if rc.app or rc.servers:
            name = service_name(index)
            backends = tuple(b for b in route_backends(config, rc, ready)
                             if (name, b) not in down)
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
                    routes=tuple(routes), services=tuple(services.values()))
