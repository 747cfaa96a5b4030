"""Route matching: which route answers a request. Pure code, precomputed per snapshot.

Order, most specific first (documented in docs/proxy.md):
1. host: an exact host, then wildcards (longest first), then routes without a host;
2. a longer path prefix before a shorter one;
3. more conditions (methods, headers) before fewer;
4. config order.
A path prefix matches whole segments: "/api" matches "/api" and "/api/x", not "/apix".
Matching works on the request's bytes (host lower-cased, without port or trailing dot), once
`resolve` has normalized the path (docs/proxy.md, "What Wharf refuses and normalizes"): most
paths are normal already, and four byte searches say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wharf.proxy import http1
from wharf.registry.snapshot import Route

if TYPE_CHECKING:
    from wharf.proxy.request import Request

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


def resolve(ex: Request) -> int:
    """Route a request by its normalized path and validated host: 0, or the status that
    refuses it (400 malformed, 404 no route). The target becomes what was matched, in
    origin-form, and an absolute-form target's host replaces Host (RFC 9112 3.2.2)."""
    peer = ex.peer
    target = ex.target
    query_at, normal = _scan(target)
    path = target if query_at < 0 else target[:query_at]
    host = ex.host
    changed = False
    if not path or path[0] != 47:  # not "/": absolute-form, or nothing routable
        parts = http1.absolute_form(path)
        if parts is None:
            return 400
        host, path = parts
        _replace_host(ex, host)
        changed = True
        normal = _scan(path)[1]
    if not normal:  # the common case skips this
        normalized = http1.normalize_path(path)
        if normalized is None:
            return 400
        changed = changed or normalized != path
        path = normalized
    if changed:
        ex.target = path if query_at < 0 else path + target[query_at:]
    if not host and ex.version == "1.1":
        return 400  # RFC 9112 3.2: a 1.1 request without Host is invalid
    if host == peer.host_seen:  # a client sends the same Host on every request
        name = peer.host_name
    else:
        checked = http1.host_name(host)
        if checked is None:
            return 400
        peer.host_seen = host
        name = peer.host_name = checked
    router = ex.plane.router
    # A bound method, made only when some route matches on headers: a lambda here would
    # have its closure built for every request.
    route = router.match(name, path, ex.method, ex.header if router.needs_headers else None)
    if route is None:
        return 404
    ex.route = route
    return 0


def _scan(target: bytes) -> tuple[int, bool]:
    """Where the query of `target` starts (-1: none), and whether the path before it is
    normal already: no "%", "#", "//" or "/." in it (most paths), so that normalize_path
    need not run. One compiled pass over the bytes: four `bytes.find` calls cost more,
    each parsing its arguments as a Python call."""
    prev = 0
    for i in range(len(target)):
        c = target[i]
        if c == 63:  # "?"
            return i, True
        if c == 37 or c == 35 or (prev == 47 and (c == 47 or c == 46)):  # % # // /.
            return target.find(b"?", i), False
        prev = c
    return -1, True


def _replace_host(ex: Request, host: bytes) -> None:
    ex.host = host
    headers = ex.headers
    for i, (name, _) in enumerate(headers):
        if len(name) == 4 and name.lower() == b"host":
            headers[i] = (name, host)
            return
    headers.append((b"Host", host))


def upgrade_allowed(ex: Request) -> bool:
    """May this request switch protocols? In HTTP/1.1 only, and to protocols that its route
    lists (WebSocket by default): routed now, as the parser must know before it reads on."""
    if ex.version != "1.1" or ex.method == b"CONNECT":
        return False
    offered = http1.header_value(ex.headers, b"upgrade")
    if not offered or resolve(ex):
        return False
    route = ex.route
    if route is None or route.service is None:
        return False
    return all(token.strip().split(b"/")[0].lower().decode("latin-1") in route.upgrade
               for token in offered.split(b","))
