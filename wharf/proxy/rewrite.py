"""Rewriting heads for the other side: the request for the backend, the response for the client.

The common request (no hop-by-hop or X-Forwarded-* header, no header rules on its route) is
copied in one pass; anything else goes through the filtering path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wharf.proxy.http1 import FORWARDED, HOP_BY_HOP, VIA, header_value
from wharf.proxy.routing import strip

if TYPE_CHECKING:
    from wharf.proxy.request import Request
    from wharf.registry.snapshot import Backend

# Answered by the proxy (Expect), or meaningless without the Upgrade that goes with it.
_NOT_FORWARDED = frozenset({b"expect", b"http2-settings"})


def request_head(ex: Request) -> bytes:
    """The head to send upstream: hop-by-hop headers out, X-Forwarded-*, Via and
    X-Request-ID in, the route's header rules applied."""
    route = ex.route
    assert route is not None
    target = ex.target
    if route.strip_prefix:  # the target is in origin-form and normalized (routing.resolve)
        path = strip(route.path, ex.path)
        query = ex.query
        target = (path + ("?" + query if query else "")).encode("latin-1")
    lines = [ex.method, b" ", target, b" HTTP/1.1\r\n"]
    backend = ex.backend
    if not ex.host and backend is not None:  # HTTP/1.0 without Host: 1.1 needs one (RFC
        lines += (b"Host: ", _authority(backend), b"\r\n")  # 9112 3.2), as nginx sends
    if ex.plain and not route.remove_request_headers:
        # lines.append, not a local alias: compiled, that is a call of a Python object.
        for name, value in ex.headers:
            lines.append(name)
            lines.append(b": ")
            lines.append(value)
            lines.append(b"\r\n")
        lines.append(ex.peer.forwarded_lines)
        if ex.host:
            lines.append(b"X-Forwarded-Host: ")
            lines.append(ex.host)
            lines.append(b"\r\n")
    else:
        _filtered_headers(ex, lines)
    if ex.x_request_id is None:
        lines.append(b"X-Request-ID: ")
        lines.append(ex.request_id)
        lines.append(b"\r\n")
    for name_s, value_s in route.add_request_headers:
        lines += (name_s.encode(), b": ", value_s.encode(), b"\r\n")
    if ex.upgrade:  # allowed by its route (server.py): else the Upgrade headers are gone
        settings = header_value(ex.headers, b"http2-settings")
        lines.append(b"Connection: upgrade\r\nUpgrade: " if settings is None else
                     b"Connection: upgrade, HTTP2-Settings\r\nUpgrade: ")
        lines += (header_value(ex.headers, b"upgrade") or b"", b"\r\n")
        if settings is not None:
            lines += (b"HTTP2-Settings: ", settings, b"\r\n")
    if ex.body_chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)

def _authority(backend: Backend) -> bytes:
    """The backend's address as a Host value (`127.0.0.1:8000`, `[::1]:8000`; `localhost`
    for a Unix socket, as nginx sends there)."""
    if not backend.port:
        return b"localhost"
    host = f"[{backend.host}]" if ":" in backend.host else backend.host
    return f"{host}:{backend.port}".encode("latin-1")


def _filtered_headers(ex: Request, lines: list[bytes]) -> None:
    """The request's headers less hop-by-hop ones, with X-Forwarded-* and Via set."""
    route = ex.route
    assert route is not None
    peer = ex.peer
    connection_tokens = _connection_tokens(ex.headers)
    trusted = peer.trusted
    remove = route.remove_request_headers
    xff = b""
    seen_proto = seen_host = False
    for name, value in ex.headers:
        lname = name.lower()
        if lname in HOP_BY_HOP or lname in connection_tokens or lname in _NOT_FORWARDED:
            continue
        if lname in FORWARDED:
            if not trusted:
                continue
            if lname == b"x-forwarded-for":
                xff += value + b", "  # several lines are one list, in order
                continue
            seen_proto = seen_proto or lname == b"x-forwarded-proto"
            seen_host = seen_host or lname == b"x-forwarded-host"
        if remove and lname.decode("latin-1") in remove:
            continue
        lines += (name, b": ", value, b"\r\n")
    lines += (b"X-Forwarded-For: ", xff, peer.ip, b"\r\n")
    if not seen_proto:  # the listener's scheme, as in `Peer.forwarded_lines`
        lines += (b"X-Forwarded-Proto: ", peer.listener.scheme.encode(), b"\r\n")
    if ex.host and not seen_host:
        lines += (b"X-Forwarded-Host: ", ex.host, b"\r\n")
    lines += (b"Via: ", VIA, b"\r\n")

def filtered_response_headers(ex: Request, lines: list[bytes],
                              headers: list[tuple[bytes, bytes]], tunnel: bool) -> None:
    """Response headers less hop-by-hop ones (kept for a 101) and the route's removals."""
    remove = ex.route.remove_response_headers if ex.route else ()
    listed = _connection_tokens(headers)
    for name, value in headers:
        lname = name.lower()
        if lname in listed and not tunnel:
            continue
        if lname in HOP_BY_HOP:
            if tunnel and lname in (b"upgrade", b"connection"):
                lines += (name, b": ", value, b"\r\n")
            continue
        if remove and lname.decode("latin-1") in remove:
            continue
        lines += (name, b": ", value, b"\r\n")


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names listed in Connection headers: hop-by-hop for this message only."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if len(name) == 10 and name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b","))
    return frozenset(tokens)
