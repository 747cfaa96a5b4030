"""Compute a snapshot from the config and the instances that can take traffic now."""

from __future__ import annotations

from wharf.config.model import Config, RouteConfig
from wharf.registry.snapshot import Backend, Route, Service, Settings, Snapshot

LOCALHOST = "127.0.0.1"


def service_name(index: int, route: RouteConfig) -> str:
    """The service a route sends to: one per app (shared by its routes), one per servers list."""
    return f"app:{route.app}" if route.app else f"route:{index}"


def build_snapshot(config: Config, version: int, ready_ports: dict[str, list[int]]) -> Snapshot:
    """The snapshot for `config`, where `ready_ports[app]` lists the ports of ready instances."""
    assert config.proxy is not None
    proxy = config.proxy
    t = proxy.timeouts
    settings = Settings(
        connect_timeout=t.connect, header_timeout=t.header, idle_timeout=t.idle,
        upstream_timeout=t.upstream, max_header_size=proxy.max_header_size,
        max_body_size=proxy.max_body_size, access_log=proxy.access_log,
        access_log_file=str(proxy.access_log_file) if proxy.access_log_file else None,
        trusted_proxies=proxy.trusted_proxies, pool_max_idle=proxy.pool_max_idle,
        pool_idle_timeout=proxy.pool_idle_timeout)
    services: dict[str, Service] = {}
    routes = []
    for index, rc in enumerate(config.routes):
        name = None
        if rc.app or rc.servers:
            name = service_name(index, rc)
            if rc.app:
                backends = tuple(Backend(LOCALHOST, p) for p in ready_ports.get(rc.app, []))
            else:
                backends = tuple(Backend(s.host, s.port, s.weight) for s in rc.servers)
            services[name] = Service(name, backends)
        routes.append(Route(
            path=rc.path, host=rc.host, methods=rc.methods,
            headers=tuple((k.lower(), v) for k, v in rc.headers.items()), service=name,
            static=str(rc.static) if rc.static else None, redirect=rc.redirect,
            redirect_code=rc.redirect_code, strip_prefix=rc.strip_prefix,
            add_request_headers=tuple(rc.add_request_headers.items()),
            remove_request_headers=rc.remove_request_headers,
            add_response_headers=tuple(rc.add_response_headers.items()),
            remove_response_headers=rc.remove_response_headers))
    return Snapshot(version=version, listen=proxy.listen, settings=settings,
                    routes=tuple(routes), services=tuple(services.values()))
