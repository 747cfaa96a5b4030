"""One request and its response, from routing to the last byte.

Theory of operation: the client side (`server.ClientConnection` for HTTP/1) parses a request
head into an Exchange and calls `begin` when it is the request's turn. The exchange decides:
404, 405, 413, a redirect, a static file (`static.py`), 429, or a service; then it picks a
backend, takes a pooled connection or opens one, writes the rewritten head, and streams the
body both ways with back-pressure (`forward.py`, `relay.py`). It talks to its client side only
through `downstream.Downstream` (send head, send data, end, abort, pause/resume, deadlines),
and its backend's `upstream.UpstreamConnection` reports to it through `upstream.Served`:

    server.ClientConnection --creates, feeds--> exchange.Exchange --uses--> UpstreamConnection
            ^                                      |        ^                      |
            +------ downstream.Downstream ---------+        +---- upstream.Served -+

The Exchange class is built in layers, one module per concept (see `request.py`):
Request (head, own answers, ending) < Forwarding (balancing, connecting, request body) <
Relaying (response, buffering, tunnel) < Exchange (the decision, here).
"""

from __future__ import annotations

from wharf.proxy import http1
from wharf.proxy.ratelimit import retry_after
from wharf.proxy.relay import Relaying
from wharf.proxy.routing import resolve
from wharf.registry.snapshot import Route


class Exchange(Relaying):
    """A request/response pair on one client side."""

    __slots__ = ()

    def begin(self) -> None:
        """The request head is complete and it is this exchange's turn: decide and act."""
        plane = self.plane
        method = self.method
        self.head_only = method == b"HEAD"
        if method == b"CONNECT":
            return self.fail(405)
        if plane.https.plain and not self.peer.listener.tls:  # HTTP-01 answers, to https
            answer = plane.https.plain_answer(self.path, self.query, self.host,
                                               self.keep_alive, self.head_only)
            if answer is not None:
                return self.respond(answer[1], answer[0])
        status = 0 if self.route is not None else resolve(self)  # an upgrade is routed early
        if status == 400:
            return self.fail(400)
        if self.body_seen > plane.max_body_size or (
                self.content_length is not None and self.content_length > plane.max_body_size):
            return self.fail(413)
        route = self.route
        if route is None:
            return self.fail(404)
        if route.service is None:
            if route.redirect is not None:
                return self._redirect(route)
            return plane.static.serve(self, route)
        svc = plane.services.get(route.service)
        if svc is None:
            return self.fail(503)
        if route.rate:
            limiter = plane.limiters.get(id(route))
            wait = limiter.take(self.client_ip(), plane.now) if limiter else 0.0
            if wait:
                if plane.counting:
                    plane.route_traffic[id(route)].rate_limited += 1
                return self.fail(429, ((b"Retry-After", retry_after(wait)),))
        self.svc = svc
        svc.count_request()
        self.key = self._balance_key(svc) if svc.key_kind else None
        if self._choose():
            self._proceed()

    def _redirect(self, route: Route) -> None:
        assert route.redirect is not None
        uri = self.path + ("?" + self.query if self.query else "")
        # The host the request was routed by: validated, so it cannot carry a path, a user or
        # a line break into Location; without one, there is nothing to send the client back to.
        host = http1.host_name(self.host) or b""
        if not host and "{host}" in route.redirect:
            return self.fail(400)
        location = route.redirect.replace("{host}", host.decode("latin-1")) \
            .replace("{uri}", uri).replace("{path}", self.path)
        self.respond(http1.simple_response(route.redirect_code, b"",
                                           headers=((b"Location", location.encode()),),
                                           close=not self.keep_alive, head_only=self.head_only),
                     route.redirect_code)
