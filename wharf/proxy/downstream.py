"""The seam between an exchange and its client side: what a request may ask of the connection
it came on, and what it may know of it.

Theory of operation: the client side (HTTP/1 over TCP today: `server.ClientConnection`; TLS
and HTTP/2 streams next) parses requests and creates one exchange per request. The exchange
answers through the small `Downstream` interface below, never through the connection's fields:
it sends a head and data, ends the answer (the client side then keeps the connection alive or
closes it), cuts it, pauses or resumes reading from the client, and asks for a deadline by
kind. The client side owns its timers and calls the exchange back when one passes.

What the exchange knows of the client is a `Peer` (shared by the requests of one connection:
its address, whether it is a trusted proxy, its listener) and the `Listener` facts (scheme,
ALPN, TLS, address): X-Forwarded-Proto comes from there, and static files use raw sendfile(2)
only on a plain TCP transport (`Downstream.raw_socket`).

Dependencies point one way: server -> exchange -> upstream, and every one of them -> this
module, which imports no other part of the proxy.

Speed: mypyc compiles a Protocol as a trait, and a value typed by it as "that trait, else any
object"; a class that names the Protocol as its base (ClientConnection does) gets native
vtable calls, as fast as calls to the class itself. One that only matches it structurally still
works, through ordinary Python calls.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Final, Protocol

# The deadlines an exchange may ask its client side for (`Downstream.set_deadline`); when one
# of EXCHANGE_DEADLINES passes, the client side calls the exchange's `timed_out(kind)`.
BODY: Final = "body"  # the client's request body stalls: 408
QUEUE: Final = "queue"  # waiting for a backend slot (max_conns): 503
CONNECT: Final = "connect"  # connecting to a backend: retry, else 504
UPSTREAM: Final = "upstream"  # the backend's answer (or reading of the body) stalls: 504
SEND: Final = "send"  # the client does not take the answer: the connection is cut
EXCHANGE_DEADLINES: Final = frozenset({BODY, QUEUE, CONNECT, UPSTREAM})  # SEND is the client's


@dataclass(frozen=True, slots=True)
class Listener:
    """What the listener a connection arrived on is (facts of one connection).

    Attributes:
        scheme: "http" or "https": what X-Forwarded-Proto says to backends.
        alpn: the protocol ALPN chose on this connection ("http/1.1", "h2"), or None.
        tls: the transport decrypts TLS; the socket then carries ciphertext, so nothing may
            be written to it past the transport (no raw sendfile).
        address: the listening address, "host:port".
    """

    scheme: str = "http"
    alpn: str | None = None
    tls: bool = False
    address: str = ""

    def over_tls(self, alpn: str | None) -> Listener:
        """The listener as a connection that completed a TLS handshake (which chose `alpn`)
        sees it: https, whatever the listener was made with. Made once per address and
        ALPN (a handshake would otherwise build one: a dataclass is not cheap to make)."""
        key = (self.address, alpn)
        found = _OVER_TLS.get(key)
        if found is None:
            found = _OVER_TLS[key] = Listener("https", alpn, True, self.address)
        return found


PLAIN: Final = Listener()  # plain HTTP on an address nobody named (tests, defaults)
# Bounded: the listening addresses of a worker times the ALPN values it offers, and None.
_OVER_TLS: Final[dict[tuple[str, str | None], Listener]] = {}


class Peer:
    """The client at the other end of a connection, as its requests see it.

    Attributes:
        ip: the peer's address (the last hop: see `Request.client_ip` for the client's).
        trusted: the peer is a trusted proxy, whose X-Forwarded-* headers are kept.
        listener: the listener facts.
        forwarded_lines: X-Forwarded-For/Proto and Via lines for this peer, made once.
        host_seen, host_name: the last Host header and the name it routes by (lower case, no
            port): a client sends the same Host on every request, so it is checked once.
    """

    __slots__ = ("forwarded_lines", "host_name", "host_seen", "ip", "listener", "trusted")

    def __init__(self, ip: bytes, trusted: bool, listener: Listener, via: bytes) -> None:
        self.ip = ip
        self.trusted = trusted
        self.listener = listener
        self.forwarded_lines = b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nVia: %s\r\n" \
            % (ip, listener.scheme.encode(), via)
        self.host_seen = b""
        self.host_name = b""

    def __repr__(self) -> str:
        return f"<Peer {self.ip.decode()} {self.listener.scheme} trusted={self.trusted}>"


class Downstream(Protocol):
    """What an exchange may ask of its client side. Every call is for the request being
    answered on that client side (on HTTP/1, the one whose turn it is).

    Attributes (read only, for the exchange):
        closed: the client is gone or going; what is sent now is dropped.
        writing_paused: the client's transport is full; hold back what can wait.
    """

    __slots__ = ()

    closed: bool
    writing_paused: bool

    def send_head(self, head: bytes) -> None:
        """Send a response head (an interim one too: 100 Continue), HTTP/1 formatted."""

    def send(self, data: bytes) -> None:
        """Send response bytes as they are (body, or a whole answer the proxy made)."""

    def open_batch(self) -> None:
        """Gather what is sent until `flush`: a head and body then leave in one send()."""

    def flush(self) -> None:
        """Send what a batch gathered."""

    def end(self, keep_alive: bool) -> None:
        """The answer is complete: go on with the next request, or close once sent."""

    def close(self) -> None:
        """Close once what was sent has left (a tunnel whose backend closed)."""

    def abort(self) -> None:
        """Cut the connection now: an answer cannot be completed."""

    def pause(self) -> None:
        """Stop reading from the client (the backend cannot take the body faster)."""

    def resume(self) -> None:
        """Read from the client again."""

    def set_deadline(self, seconds: float, kind: str) -> None:
        """Arm the client side's one deadline for this exchange: `kind` (BODY, QUEUE,
        CONNECT, UPSTREAM, SEND) in `seconds`; the previous one is replaced."""

    def start_tunnel(self) -> None:
        """The backend switched protocols: from now on, relay the client's bytes raw to the
        exchange (`tunnel_in`) and send what it relays back with `send`."""

    def raw_socket(self) -> socket.socket | None:
        """The socket to write to directly (sendfile), when nothing is waiting in the
        transport and the transport is plain TCP; else None."""
