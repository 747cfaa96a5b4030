"""A request as its client side parsed it, and how any answer to it ends.

The exchange is one class in layers, one module each, each using only those below it (mypyc
compiles the chain to one native class: calls between layers cost nothing extra):

- `Request` (here): the parsed head, the client side it came from (`Downstream`, `Peer`), the
  answers the proxy makes itself (`respond`, `fail`), and the one place where every answer
  ends (`_ended`): the access log and the traffic counters are written there.
- `forward.Forwarding`: picking a backend, connecting, sending the request and its body.
- `relay.Relaying`: relaying the backend's response (buffered or streamed) or a tunnel.
- `exchange.Exchange`: deciding what to do with a request (route, static, redirect, service).

Static files (`static.py`) answer through this layer only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from wharf.proxy import http1
from wharf.proxy.downstream import Downstream, Peer
from wharf.registry.snapshot import Backend, Route

if TYPE_CHECKING:
    from wharf.proxy.plane import DataPlane


class Request:
    """One request on one client side, and the bookkeeping of its answer."""

    __slots__ = (
        "backend",
        "body_chunked",
        "body_seen",
        "close_client",
        "content_length",
        "done",
        "down",
        "expect_continue",
        "head_only",
        "head_size",
        "headers",
        "host",
        "keep_alive",
        "method",
        "peer",
        "plain",
        "plane",
        "request_complete",
        "request_id",
        "response_bytes",
        "response_started",
        "route",
        "start",
        "status",
        "target",
        "upgrade",
        "version",
        "x_request_id",
    )

    # Declared here too: the Protocols the exchange implements (upstream.Served,
    # services.Waiting) name them, and mypyc checks them before it reads __init__.
    done: bool
    response_started: bool

    def __init__(self, down: Downstream, peer: Peer, plane: DataPlane) -> None:
        self.down = down
        self.peer = peer
        self.plane = plane
        # Read only by the JSON access log (duration_ms) and the metrics: a clock read per
        # request otherwise.
        self.start = time.time() if plane.access.enabled or plane.counting else 0.0
        # The head, as the client side parsed it.
        self.method = b""
        self.target = b""
        self.version = "1.1"
        self.keep_alive = True
        self.headers: list[tuple[bytes, bytes]] = []
        self.host = b""
        self.plain = True  # no header that needs filtering before it is forwarded
        self.head_size = 0
        self.content_length: int | None = None
        self.body_chunked = False
        self.body_seen = 0
        self.expect_continue = False
        self.upgrade = False
        self.x_request_id: bytes | None = None
        self.request_id = b""
        self.request_complete = False
        self.route: Route | None = None
        # The answer.
        self.backend: Backend | None = None  # the backend chosen to answer, if any
        self.head_only = False
        self.response_started = False
        self.response_bytes = 0  # of the body, as the access log counts them
        self.status = 0
        self.close_client = False
        self.done = False

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.method.decode()} "
                f"{self.target.decode('latin-1')} status={self.status} done={self.done}>")

    # -- the head -----------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The request path, as text (normalized once routed: see `routing.resolve`)."""
        parts = http1.split_target(self.target)
        return parts[1] if parts else ""

    @property
    def query(self) -> str:
        """The query string, as text, without '?'."""
        parts = http1.split_target(self.target)
        return parts[2] if parts else ""

    def header(self, name: bytes) -> bytes | None:
        """The value of the header `name` (lower case), or None."""
        return http1.header_value(self.headers, name)

    def client_ip(self) -> bytes:
        """The client's address: the peer, unless the peer is a trusted proxy; then the last
        address of X-Forwarded-For that is not a trusted proxy (nginx's real_ip_recursive).
        The addresses left of it were written by the client itself and prove nothing."""
        peer = self.peer
        if not peer.trusted:
            return peer.ip
        chain = [address.strip() for name, value in self.headers
                 if len(name) == 15 and name.lower() == b"x-forwarded-for"
                 for address in value.split(b",")]
        for address in reversed(chain):
            if address and not self.plane.is_trusted(address.decode("latin-1")):
                return address
        return chain[0] if chain and chain[0] else peer.ip  # every hop trusted

    # -- ending -------------------------------------------------------------------------------

    def respond(self, data: bytes, status: int) -> None:
        """Send a complete locally made response and finish."""
        self.status = status
        self.response_started = True
        self.response_bytes = len(data) - data.find(b"\r\n\r\n") - 4  # the body, as logged
        https = self.plane.https
        if self.peer.listener.tls and https.hsts_line:
            data = https.with_hsts(data)
        self.down.send(data)
        self.finish()

    def fail(self, status: int, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        """Answer with an error status if nothing was sent yet; else cut the connection."""
        if self.done:
            return
        if self.response_started:
            self.status = self.status or status
            self.cut()
            return
        self._let_go()  # the backend gets nothing more, before the client hears of it
        # As nginx: after a 400 or 413 the client is not trusted with the connection.
        self.close_client = self.close_client or not self.request_complete or \
            status == 400 or status == 413
        self.respond(http1.simple_response(status, close=self.close_client or not self.keep_alive,
                                           headers=headers, head_only=self.head_only), status)

    def finish(self) -> None:
        """The response is complete."""
        self._ended(True)

    def cut(self) -> None:
        """The response started and cannot be completed: cut the client's connection."""
        self._ended(False)

    def _ended(self, complete: bool) -> None:
        """Every answer ends here, once: whatever it held is let go, the access log gets its
        line (complete answers: a cut one is not logged, as before), and the client side
        goes on with the next request or closes."""
        self.done = True
        self._let_go()
        if self.plane.counting:
            self._count(complete)
        if not complete:
            self.down.abort()
            return
        self.plane.log_access(self.peer.ip, self)
        self.down.end(self.keep_alive and not self.close_client and not self.upgrade)

    def _count(self, complete: bool) -> None:
        """Add this answer to its route's traffic counters (a cut one counts as no answer);
        the layer that chooses a backend extends it."""
        plane = self.plane
        route = self.route
        traffic = plane.route_traffic.get(id(route)) if route is not None else None
        if traffic is None:
            traffic = plane.unrouted
        traffic.finished(self.status if complete else 0, time.time() - self.start,
                         self.body_seen, self.response_bytes)

    def _let_go(self) -> None:
        """Give back what the answer holds (a backend's connection and slot, a buffer); the
        layers that take such things extend it."""
