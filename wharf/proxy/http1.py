"""HTTP/1.1 helpers for the proxy: hop-by-hop headers, targets, canned responses, chunk framing.

Parsing itself is llhttp's (through httptools), the parser of Node.js, which already refuses
the request-smuggling shapes: Content-Length with Transfer-Encoding, duplicate Content-Length,
a Transfer-Encoding whose last coding is not chunked, bad chunk sizes, obs-fold, bare CR,
control characters and whitespace before the colon. What llhttp lets through and a proxy must
not is checked here.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Final

from wharf.proxy.date import HTTP_DATE

# RFC 9110 7.6.1: these describe one connection and are never forwarded.
HOP_BY_HOP: Final = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te",
                               b"trailer", b"transfer-encoding", b"upgrade"})
# Replaced by the proxy's own values unless the peer is a trusted proxy.
FORWARDED: Final = frozenset({b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})

VIA: Final = b"1.1 wharf"


def reason(status: int) -> bytes:
    """The standard reason phrase of a status code."""
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


def status_line(status: int) -> bytes:
    """`HTTP/1.1 200 OK\\r\\n`."""
    return b"HTTP/1.1 %d %s\r\n" % (status, reason(status))


def error_body(status: int) -> bytes:
    """The small text body of a response the proxy makes itself (none below 400)."""
    return b"%d %s\n" % (status, reason(status)) if status >= 400 else b""


def simple_response(status: int, body: bytes = b"", close: bool = False,
                    headers: tuple[tuple[bytes, bytes], ...] = (),
                    head_only: bool = False) -> bytes:
    """A complete response with a small text body (errors, redirects)."""
    if not body:
        body = error_body(status)
    lines = [status_line(status), HTTP_DATE.line,
             b"Content-Type: text/plain; charset=utf-8\r\n",
             b"Content-Length: %d\r\n" % len(body)]
    lines += [name + b": " + value + b"\r\n" for name, value in headers]
    if close:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    return b"".join(lines) + (b"" if head_only else body)


def has_dot_segment(path: str) -> bool:
    """True if the path has a `.` or `..` segment, raw or percent-encoded."""
    if "/." not in path and "%2" not in path:
        return False
    decoded = path.replace("%2e", ".").replace("%2E", ".").replace("%2f", "/").replace("%2F", "/")
    return any(seg in (".", "..") for seg in decoded.split("/"))


def split_target(target: bytes) -> tuple[str, str, str] | None:
    """(host, path, query) of a request target; host is "" for origin-form; None if invalid."""
    host = ""
    if target[:1] != b"/":
        lowered = target[:8].lower()
        if lowered.startswith(b"http://") or lowered.startswith(b"https://"):
            rest = target.split(b"://", 1)[1]
            slash = rest.find(b"/")
            authority, target = (rest, b"/") if slash < 0 else (rest[:slash], rest[slash:])
            host = authority.decode("latin-1")
        else:
            return None
    path, _, query = target.partition(b"?")
    return host, path.decode("latin-1"), query.decode("latin-1")


def host_without_port(host: bytes) -> bytes:
    """`Example.com:8080` → `example.com`; IPv6 literals keep their brackets."""
    if host[:1] == b"[":
        return host[:host.find(b"]") + 1].lower()
    colon = host.find(b":")
    return (host if colon < 0 else host[:colon]).lower()


def header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of header `name` (lower case), or None."""
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK: Final = b"0\r\n\r\n"
CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"



def cookie_value(header: bytes, name: bytes) -> bytes | None:
    """The value of cookie `name` in a Cookie header, if it is there."""
    for part in header.split(b";"):
        key, sep, value = part.strip().partition(b"=")
        if sep and key == name:
            return value.strip(b'"')
    return None
