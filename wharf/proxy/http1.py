"""HTTP/1.1 helpers for the proxy: hop-by-hop headers, targets, canned responses, chunk framing.

Parsing itself is llhttp's (through httptools), the parser of Node.js, which already refuses
the request-smuggling shapes: Content-Length with Transfer-Encoding, duplicate Content-Length,
a Transfer-Encoding whose last coding is not chunked, bad chunk sizes, obs-fold, bare CR,
control characters and whitespace before the colon. What llhttp lets through and a proxy must
not is checked here.
"""

from __future__ import annotations

from collections.abc import Mapping
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


# RFC 3986 2.3: the unreserved characters, which mean the same percent-encoded or not.
_UNRESERVED: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               b"0123456789-._~")
_HEX: Final = {c: int(chr(c), 16) for c in b"0123456789abcdefABCDEF"}
# An encoded slash, backslash or NUL would be one thing to the router and another to a backend that
# decodes them: refused (Traefik refuses the same three by default; Apache refuses %2F).
_REFUSED_ESCAPES: Final = frozenset((0x2F, 0x5C, 0x00))
# What a host may be made of (RFC 3986 3.2.2): a reg-name's unreserved characters and
# sub-delims (no percent-encoding: no client sends it), or an IP literal's.
_REG_NAME: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;="
_IP_LITERAL: Final = b"0123456789abcdefABCDEF:."


def normalize_path(path: bytes) -> bytes | None:
    """The path routes match and the backend is sent (RFC 3986 6.2.2): percent-encoded
    unreserved characters decoded, other escapes in upper case, `//` merged into `/`. None
    (a 400) for a malformed or refused escape, a `.`/`..` segment or a fragment."""
    if path.find(b"#") >= 0:
        return None  # RFC 9112 3.2: no fragment in a request target
    if path.find(b"%") >= 0:
        decoded = _decode_unreserved(path)
        if decoded is None:
            return None
        path = decoded
    while path.find(b"//") >= 0:
        path = path.replace(b"//", b"/")
    if path.find(b"/.") >= 0 and any(seg == b"." or seg == b".." for seg in path.split(b"/")):
        return None
    return path


def _decode_unreserved(path: bytes) -> bytes | None:
    out = bytearray()
    start = 0
    at = path.find(b"%")
    while at >= 0:
        out += path[start:at]
        if at + 2 >= len(path):
            return None
        high = _HEX.get(path[at + 1], -1)
        low = _HEX.get(path[at + 2], -1)
        if high < 0 or low < 0:
            return None
        value = high * 16 + low
        if value in _UNRESERVED:
            out.append(value)
        elif value in _REFUSED_ESCAPES:
            return None
        else:
            out += b"%%%02X" % value
        start = at + 3
        at = path.find(b"%", start)
    out += path[start:]
    return bytes(out)


def absolute_form(target: bytes) -> tuple[bytes, bytes] | None:
    """(authority, path) of an absolute-form target without its query; None if it is not
    one (RFC 9112 3.2.2)."""
    lowered = target[:8].lower()
    if not (lowered.startswith(b"http://") or lowered.startswith(b"https://")):
        return None
    rest = target[target.find(b"://") + 3:]
    slash = rest.find(b"/")
    return (rest, b"/") if slash < 0 else (rest[:slash], rest[slash:])


def host_name(host: bytes) -> bytes | None:
    """The name a Host value routes by: lower case, without port or trailing dot. None if
    it is not a host and optional port (RFC 3986 3.2.2: a reg-name or an IP literal)."""
    if host[:1] == b"[":
        end = host.find(b"]")
        if end < 2 or host[1:end].translate(None, _IP_LITERAL):
            return None
        name, port = host[:end + 1], host[end + 1:]
    else:
        colon = host.find(b":")
        name, port = (host, b"") if colon < 0 else (host[:colon], host[colon:])
        if name[-1:] == b".":
            name = name[:-1]  # `example.com.` is `example.com`
        if not name or name.translate(None, _REG_NAME) or name.find(b"..") >= 0:
            return None
    if port and port != b":" and not (port[:1] == b":" and port[1:].isdigit()):
        return None
    return name.lower()


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


class KnownHeaders:
    """Header names (lower case), each with what it stands for, found in any spelling: by a
    byte comparison with the spellings senders use ("Content-Length"), grouped by length, and
    only for another spelling of such a length by lower-casing and a dict lookup. Most
    headers are none of them and cost a length check: no hash of each new name."""

    __slots__ = ("_by_length", "_names")

    def __init__(self, names: Mapping[bytes, object]) -> None:
        self._names = dict(names)
        self._by_length = tuple(
            tuple((n.title(), v) for n, v in sorted(names.items()) if len(n) == size)
            for size in range(max(len(n) for n in names) + 1))

    def find(self, name: bytes) -> object | None:
        """What `name` stands for, or None if it is not one of them."""
        size = len(name)
        if size >= len(self._by_length):
            return None
        candidates = self._by_length[size]
        if not candidates:
            return None
        for sent, value in candidates:
            if name == sent:
                return value
        return self._names.get(name.lower())


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
