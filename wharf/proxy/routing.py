"""Route matching: which route answers a request. Pure code, precomputed per snapshot.

Order, most specific first (documented in docs/proxy.md):
1. host: an exact host, then wildcards (longest first), then routes without a host;
2. a longer path prefix before a shorter one;
3. more conditions (methods, headers) before fewer;
4. config order.
A path prefix matches whole segments: "/api" matches "/api" and "/api/x", not "/apix".
"""

from __future__ import annotations

from collections.abc import Callable

from wharf.registry.snapshot import Route

HeaderLookup = Callable[[str], str | None]


def _specificity(indexed: tuple[int, Route]) -> tuple[int, int, int, int]:
    index, route = indexed
    if route.host is None:
        host_rank = 2
    elif route.host.startswith("*."):
        host_rank = 1
    else:
        host_rank = 0
    host_len = -len(route.host or "")
    conditions = bool(route.methods) + len(route.headers)
    return (host_rank * 1000 + host_len, -len(route.path), -conditions, index)


def path_matches(prefix: str, path: str) -> bool:
    """True if `path` is `prefix` or below it, segment-wise."""
    if not path.startswith(prefix):
        return False
    return len(path) == len(prefix) or prefix.endswith("/") or path[len(prefix)] == "/"


class Router:
    """Finds the route of a request; built once per snapshot."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        ordered = [r for _, r in sorted(enumerate(routes), key=_specificity)]
        self.routes = tuple(ordered)
        exact_hosts = {r.host for r in ordered if r.host and not r.host.startswith("*.")}
        others = tuple(r for r in ordered if r.host is None or r.host.startswith("*."))
        self._by_host = {h: tuple(r for r in ordered if r.host in (h, None) or (
            r.host.startswith("*.") and h.endswith(r.host[1:]))) for h in exact_hosts}
        self._others = others
        self.needs_headers = any(r.headers for r in ordered)

    def __repr__(self) -> str:
        return f"<Router routes={len(self.routes)}>"

    def match(self, host: str, path: str, method: str,
              header: HeaderLookup | None = None) -> Route | None:
        """The first route, in specificity order, that matches every condition."""
        candidates = self._by_host.get(host, self._others)
        for route in candidates:
            rhost = route.host
            if rhost is not None and rhost != host and not (
                    rhost.startswith("*.") and host.endswith(rhost[1:])):
                continue
            if not path_matches(route.path, path):
                continue
            if route.methods and method not in route.methods:
                continue
            if route.headers and (header is None or any(
                    header(name) != value for name, value in route.headers)):
                continue
            return route
        return None


def strip(prefix: str, path: str) -> str:
    """`path` without the route prefix, still starting with '/'."""
    rest = path[len(prefix.rstrip("/")):]
    return rest if rest.startswith("/") else "/" + rest
