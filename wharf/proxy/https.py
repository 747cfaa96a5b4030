"""What HTTPS changes on the request path, decided once per snapshot.

- On the plain listeners, before routing: `GET /.well-known/acme-challenge/TOKEN` answers the
  key authorization of an open HTTP-01 challenge (200 text/plain; an unknown token is a 404
  once Wharf does HTTPS, so a stale or guessed token never reaches a backend); any other
  request for a name a certificate covers gets a 308 to the same URL on https (at the port of
  the first TLS listener, left out when it is 443), if `redirect_http` is on. 308, not 301:
  the method and body are kept, as Caddy and Traefik do.
- On the TLS listeners: the `Strict-Transport-Security` header on every answer, proxied or
  Wharf's own, when `hsts` is set (never on plain HTTP, where RFC 6797 7.2 forbids it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wharf.proxy import http1
from wharf.registry.snapshot import Snapshot

if TYPE_CHECKING:
    from wharf.proxy.request import Request

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


class Https:
    """The HTTPS decisions of one snapshot."""

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        tls = snapshot.tls if snapshot is not None else None
        self.hsts_line = b""
        self.redirect = False
        self.exact: frozenset[bytes] = frozenset()
        self.wildcard: frozenset[bytes] = frozenset()  # b"example.com" for *.example.com
        self.port_suffix = b""
        self.http01: dict[str, bytes] = {}
        self.plain = False  # whether plain requests need a look before routing
        if snapshot is None or tls is None:
            return
        if tls.hsts:
            self.hsts_line = b"Strict-Transport-Security: " + tls.hsts.encode() + b"\r\n"
        names = [n.encode() for c in tls.certificates for n in c.names]
        self.exact = frozenset(n for n in names if not n.startswith(b"*."))
        self.wildcard = frozenset(n[2:] for n in names if n.startswith(b"*."))
        self.redirect = tls.redirect_http and bool(names) and bool(snapshot.listen_tls)
        self.port_suffix = b"" if tls.redirect_port == 443 else b":%d" % tls.redirect_port
        self.http01 = {token: key.encode() for token, key in tls.http01}
        self.plain = self.redirect or bool(self.http01) or bool(snapshot.listen_tls)

    def __repr__(self) -> str:
        return (f"<Https redirect={self.redirect} names={len(self.exact)}+{len(self.wildcard)}"
                f" http01={len(self.http01)} hsts={bool(self.hsts_line)}>")

    def covers(self, name: bytes) -> bool:
        """Whether a certificate holds `name` (lower case, no port)."""
        if name in self.exact:
            return True
        dot = name.find(b".")
        return dot > 0 and name[dot + 1:] in self.wildcard

    def plain_answer(self, ex: Request) -> tuple[int, bytes] | None:
        """The answer to a plain-HTTP request before routing (status, bytes), or None."""
        path = ex.path
        if path.startswith(CHALLENGE_PREFIX):
            key = self.http01.get(path[len(CHALLENGE_PREFIX):])
            if key is None:
                return 404, http1.simple_response(404, close=not ex.keep_alive,
                                                  head_only=ex.head_only)
            return 200, http1.simple_response(200, key, close=not ex.keep_alive,
                                              head_only=ex.head_only)
        if not self.redirect:
            return None
        name = http1.host_name(ex.host) if ex.host else None
        if name is None or not self.covers(name):
            return None
        target = ex.path + ("?" + ex.query if ex.query else "")
        location = b"https://" + name + self.port_suffix + target.encode("latin-1")
        return 308, http1.simple_response(308, b"", headers=((b"Location", location),),
                                          close=not ex.keep_alive, head_only=ex.head_only)

    def with_hsts(self, response: bytes) -> bytes:
        """A locally made response with the HSTS header after its status line."""
        end = response.find(b"\r\n") + 2
        return response[:end] + self.hsts_line + response[end:]
