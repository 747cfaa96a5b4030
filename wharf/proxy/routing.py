"""Route matching: which route answers a request. Pure code, precomputed per snapshot.

Order, most specific first (documented in docs/proxy.md):
1. host: an exact host, then wildcards (longest first), then routes without a host;
2. a longer path prefix before a shorter one;
3. more conditions (methods, headers) before fewer;
4. config order.
A path prefix matches whole segments: "/api" matches "/api" and "/api/x", not "/apix".
Matching works on the request's bytes as they arrive (host lower-cased, without port), so the
request path decodes nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from wharf.registry.snapshot import Route

HeaderLookup = Callable[[bytes], bytes | None]
# (route, exact host, wildcard suffix, path prefix, prefix ends with "/", methods, headers)
_Compiled = tuple[Route, bytes | None, bytes | None, bytes, bool, frozenset[bytes],
                  tuple[tuple[bytes, bytes], ...]]


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


def _compile(route: Route) -> _Compiled:
    host = route.host.encode() if route.host else None
    exact = host if host and not host.startswith(b"*.") else None
    suffix = host[1:] if host and host.startswith(b"*.") else None
    path = route.path.encode()
    return (route, exact, suffix, path, path.endswith(b"/"),
            frozenset(m.encode() for m in route.methods),
            tuple((n.encode(), v.encode()) for n, v in route.headers))


class Router:
    """Finds the route of a request; built once per snapshot."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        ordered = [_compile(r) for _, r in sorted(enumerate(routes), key=_specificity)]
        self.routes = tuple(c[0] for c in ordered)
        exact_hosts = {c[1] for c in ordered if c[1] is not None}
        self._by_host = {h: tuple(c for c in ordered if c[1] == h or (c[1] is None and (
            c[2] is None or h.endswith(c[2])))) for h in exact_hosts}
        self._others = tuple(c for c in ordered if c[1] is None)
        self.needs_headers = any(r.headers for r in routes)

    def __repr__(self) -> str:
        return f"<Router routes={len(self.routes)}>"

    def match(self, host: bytes, path: bytes, method: bytes,
              header: HeaderLookup | None = None) -> Route | None:
        """The first route, in specificity order, that matches every condition."""
        for route, _exact, suffix, prefix, slash, methods, headers in self._by_host.get(
                host, self._others):
            if suffix is not None and not host.endswith(suffix):
                continue
            if not path.startswith(prefix) or not (
                    slash or len(path) == len(prefix) or path[len(prefix)] == 47):  # "/"
                continue
            if methods and method not in methods:
                continue
            if headers and (header is None or any(header(n) != v for n, v in headers)):
                continue
            return route
        return None


def strip(prefix: str, path: str) -> str:
    """`path` without the route prefix, still starting with '/'."""
    rest = path[len(prefix.rstrip("/")):]
    return rest if rest.startswith("/") else "/" + rest
