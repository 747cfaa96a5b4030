"""What `status` says of an instance beyond its lifecycle: where it listens, whether it has a
port at all. Kept apart from the daemon so the rule is one small function, tested alone."""

from __future__ import annotations

from wharf.addresses import format_address
from wharf.config.model import AppConfig, ProxyConfig


def uses_port(app: AppConfig, routed: bool) -> bool:
    """True if an instance of `app` is known to serve on its PORT: the app has a fixed `port`,
    a `socket`, a route sending to it, or `{port}` in its command. Every instance is given a
    PORT; an app with none of these (a background worker) shows `-` instead of a number, and
    so does one on a Unix socket, which has no port."""
    if app.socket is not None:
        return app.socket[1] != 0
    return app.port is not None or routed or any("{port}" in arg for arg in app.command)


def listen_addresses(app: AppConfig, proxy: ProxyConfig | None, is_proxy: bool) -> list[str]:
    """The addresses that Wharf binds for an instance of `app`: the proxy's `listen` for a proxy
    worker, the shared socket in socket mode; none for an app that binds its own port."""
    if is_proxy:
        return [format_address(host, port)
                for host, port in (*proxy.listen, *proxy.listen_tls)] if proxy else []
    return [format_address(*app.socket)] if app.socket is not None else []
