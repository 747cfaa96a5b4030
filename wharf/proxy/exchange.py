"""One request and its response, from routing to the last byte.

Theory of operation: the client connection parses a request head and creates an Exchange. The
exchange routes it (404, redirect, static file, or a service), picks a backend, takes a pooled
connection or opens one, writes the rewritten head, then streams the body both ways with
back-pressure: a full upstream buffer pauses reading from the client, a full client buffer
pauses reading from the backend. Errors before the response has started become 502/503/504;
after it has started, the client connection is cut (a half-sent response cannot be mended).
A request without a body that meets a reused connection closed under it is retried once on a
fresh connection, as nginx and Go's transport do: the backend never saw it.

A request body is held back until it is complete or BODY_BUFFER bytes have arrived, so a body
whose chunked framing turns out malformed within that much never reaches a backend at all
(nginx buffers whole bodies by default; HAProxy streams). Larger bodies then stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

from wharf.proxy import http1
from wharf.proxy.balancers import NOTHING, Load
from wharf.proxy.balancers.peak_ewma import observe
from wharf.proxy.buffering import ResponseBuffer
from wharf.proxy.date import HTTP_DATE
from wharf.proxy.http1 import LAST_CHUNK, chunk
from wharf.proxy.pool import Pool
from wharf.proxy.ratelimit import retry_after
from wharf.proxy.rewrite import filtered_response_headers, request_head
from wharf.proxy.routing import resolve
from wharf.proxy.services import KEY_HEADER, KEY_IP, KEY_URI, ServiceState
from wharf.proxy.upstream import UpstreamConnection
from wharf.registry.snapshot import Backend, Route

if TYPE_CHECKING:
    from wharf.proxy.server import ClientConnection

_NO_BODY_STATUS: Final = frozenset({204, 304})
# Methods a request may be sent again with after a reset (RFC 9110 9.2.2).
_IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
_STATUS_LINE: Final = [http1.status_line(code) for code in range(600)]
_VIA_LINE: Final = b"Via: " + http1.VIA + b"\r\n"
# How much of a request body is validated before the backend sees any of it.
BODY_BUFFER: Final = 64 * 1024
# While the backend connection is being made, read at most this much more of the body.
PENDING_LIMIT: Final = 256 * 1024
# With buffering on, larger pieces of a response go to the client in slices of this size, so
# that what its transport cannot send is kept by the response buffer instead.
WRITE_SLICE: Final = 64 * 1024


class Exchange:
    """A request/response pair on one client connection."""

    __slots__ = (
        "answered",
        "backend",
        "backend_paused",
        "body_chunked",
        "body_seen",
        "buffer",
        "buffering",
        "client",
        "close_client",
        "connecting",
        "content_length",
        "done",
        "expect_continue",
        "head_only",
        "head_size",
        "headers",
        "host",
        "keep_alive",
        "key",
        "load",
        "method",
        "pending",
        "pending_size",
        "pinned",
        "plain",
        "pool",
        "request_complete",
        "request_id",
        "response_bytes",
        "response_chunked",
        "response_started",
        "retried",
        "route",
        "sent_at",
        "start",
        "status",
        "svc",
        "target",
        "tried",
        "tunnel",
        "upgrade",
        "upstream",
        "version",
        "waiting_body",
        "x_request_id",
    )

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        # Read only by the JSON access log (duration_ms): a clock read per request otherwise.
        self.start = time.time() if client.plane.access.enabled else 0.0
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
        self.route: Route | None = None
        self.backend: Backend | None = None
        self.upstream: UpstreamConnection | None = None
        self.pending: list[bytes] | None = []  # request bytes waiting for the upstream
        self.request_complete = False
        self.response_started = False
        self.response_chunked = False
        self.response_bytes = 0
        self.status = 0
        self.close_client = False
        self.tunnel = False
        self.retried = False
        self.done = False
        self.head_only = False
        self.pending_size = 0
        self.waiting_body = False
        self.svc: ServiceState | None = None
        self.key: bytes | None = None
        self.load: Load | None = None
        self.pool: Pool | None = None
        self.tried: list[Load] = []
        self.sent_at = 0.0
        self.pinned = b""  # the sticky id of the chosen backend
        self.connecting: asyncio.Task[tuple[asyncio.Transport, asyncio.Protocol]] | None = None
        # Response buffering (see wharf/proxy/buffering.py): whether this response may be
        # read ahead of its client, what waits for the client, whether the backend is paused
        # because that is full, and whether the backend's whole answer is in.
        self.buffering = False
        self.buffer: ResponseBuffer | None = None
        self.backend_paused = False
        self.answered = False

    def __repr__(self) -> str:
        return (f"<Exchange {self.method.decode()} {self.target.decode('latin-1')} "
                f"status={self.status} done={self.done}>")

    # -- routing ------------------------------------------------------------------------------

    def begin(self) -> None:
        """The request head is complete and it is this exchange's turn: decide and act."""
        client = self.client
        plane = client.plane
        method = self.method
        self.head_only = method == b"HEAD"
        if method == b"CONNECT":
            return self.fail(405)
        if plane.https.plain and not client.tls:  # HTTP-01 answers, redirects to https
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
            wait = limiter.take(client.client_ip(self), plane.now) if limiter else 0.0
            if wait:
                return self.fail(429, ((b"Retry-After", retry_after(wait)),))
        self.svc = svc
        svc.count_request()
        self.key = self._balance_key(svc) if svc.key_kind else None
        if self._choose():
            self._proceed()

    def _proceed(self) -> None:
        """A backend is chosen: connect now, or once the body is in hand."""
        client = self.client
        if self.request_complete:
            self._connect()
            return
        if self.expect_continue and self.version == "1.1":  # RFC 9110 10.1.1: 1.0 ignores it
            client.write(http1.CONTINUE)
        self.waiting_body = True
        client.set_deadline(client.plane.header_timeout, "body")

    # -- balancing ----------------------------------------------------------------------------

    def _balance_key(self, svc: ServiceState) -> bytes | None:
        kind = svc.key_kind
        if kind == KEY_IP:
            return self.client.client_ip(self)
        if kind == KEY_URI:
            return self.target
        if kind == KEY_HEADER:
            return self._header_lookup(svc.key_name)
        cookies = self._header_lookup(b"cookie")
        return http1.cookie_value(cookies, svc.key_name) if cookies else None

    def _choose(self, retrying: bool = False) -> bool:
        """Pick a backend that can take the request; else queue it (max_conns) or fail it.
        A retry that finds no other backend just says so: its caller reports the failure."""
        svc = self.svc
        assert svc is not None
        index = svc.pick(self.key, svc.avoiding(self.tried) if self.tried else NOTHING)
        if index < 0:
            if retrying:
                return False
            if svc.service.max_conns and svc.backends:
                svc.queue.append(self)  # every backend is at max_conns: wait for a turn
                self.client.set_deadline(svc.service.queue_timeout, "queue")
                return False
            self.fail(503)
            return False
        self.backend = svc.backends[index]
        self.load = load = svc.loads[index]
        self.pool = svc.pools[index]
        if svc.sticky:
            self.pinned = svc.ids[index]
        load.inflight += 1
        if svc.measures_latency:
            self.sent_at = self.client.plane.loop.time()
        return True

    def dequeued(self) -> None:
        """A backend freed up while this request waited for one."""
        if not self.done and self._choose():
            self._proceed()

    def _release(self) -> None:
        """Give the backend's slot back, and hand it to a request waiting for one."""
        load, self.load = self.load, None
        if load is None:
            return
        load.inflight -= 1
        svc = self.svc
        if svc is not None:
            while svc.queue:
                waiting = svc.queue.popleft()
                if not waiting.done:
                    waiting.dequeued()
                    break

    def _retry(self, reason: str) -> bool:
        """After a failed attempt: try another backend if retries and the budget allow."""
        svc, load = self.svc, self.load
        if svc is None or load is None:
            return False
        svc.failed(load, reason, self.client.plane.now)
        if len(self.tried) >= svc.service.retries or not svc.may_retry():
            return False
        self.tried.append(load)
        self._release()
        current = self.client.plane.services.get(svc.service.name)
        if current is None:
            return False
        self.svc = current  # a snapshot since may have taken backends out: not those
        if not self._choose(retrying=True):
            return False
        self._connect()
        return True

    @property
    def path(self) -> str:
        """The request path, as text (normalized once routed: see `resolve`)."""
        parts = http1.split_target(self.target)
        return parts[1] if parts else ""

    @property
    def query(self) -> str:
        """The query string, as text, without '?'."""
        parts = http1.split_target(self.target)
        return parts[2] if parts else ""

    def _header_lookup(self, name: bytes) -> bytes | None:
        return http1.header_value(self.headers, name)

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

    # -- the upstream connection ------------------------------------------------------------

    def _connect(self) -> None:
        assert self.backend is not None and self.pool is not None
        plane = self.client.plane
        pool = self.pool
        conn = pool.take()
        if conn is not None:
            assert isinstance(conn, UpstreamConnection)
            self._use(conn)
            return
        pool.created += 1
        self.client.set_deadline(plane.connect_timeout, "connect")
        loop = asyncio.get_running_loop()
        factory = cast(Callable[[], asyncio.Protocol], lambda: UpstreamConnection(pool))
        task = loop.create_task(loop.create_connection(factory,
                                                       self.backend.host, self.backend.port))
        self.connecting = task
        task.add_done_callback(self._connected)

    def _connected(self, task: asyncio.Task[tuple[asyncio.Transport, asyncio.Protocol]]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if self.done or task is not self.connecting:
            if exc is None:  # a connection nobody waits for any more
                cast(UpstreamConnection, task.result()[1]).close()
            return
        self.connecting = None
        if exc is not None:
            if not self._retry(f"connect: {exc}"):
                self.fail(502)
            return
        self._use(cast(UpstreamConnection, task.result()[1]))

    def _use(self, conn: UpstreamConnection) -> None:
        self.upstream = conn
        conn.attach(self)
        conn.write(request_head(self))
        pending, self.pending = self.pending, None
        self.pending_size = 0
        if pending:
            conn.write(b"".join(pending))
            self.client.resume_reading()
        if self.request_complete and self.body_chunked:
            conn.write(LAST_CHUNK)
        self.client.set_deadline(self.client.plane.upstream_timeout, "upstream")

    # -- request body, from the client ------------------------------------------------------

    def request_body(self, data: bytes) -> None:
        """A piece of the request body (already de-chunked)."""
        self.body_seen += len(data)
        if self.body_seen > self.client.plane.max_body_size:
            if self.client.active is not self:  # queued: begin() answers 413 in its turn
                self.pending = None
                return
            return self.fail(413)
        framed = chunk(data) if self.body_chunked else data
        client = self.client
        if self.upstream is not None:
            if not self.response_started:  # the body streams: now the backend's pace counts
                client.deadline = client.plane.now + client.plane.upstream_timeout
                client.deadline_kind = "upstream"
        elif self.connecting is None:  # a stalled upload is the client's fault: 408, not 504
            client.set_deadline(client.plane.header_timeout, "body")
        if self.pending is not None:
            self.pending.append(framed)
            self.pending_size += len(framed)
            if self.waiting_body and self.pending_size >= BODY_BUFFER:
                self.waiting_body = False
                self._connect()
            elif self.pending_size > PENDING_LIMIT:
                self.client.pause_reading()
        elif self.upstream is not None:
            self.upstream.write(framed)

    def request_end(self) -> None:
        """The whole request has been received."""
        self.request_complete = True
        if self.waiting_body:
            self.waiting_body = False
            self._connect()
        elif self.pending is None and self.upstream is not None:
            if self.body_chunked:
                self.upstream.write(LAST_CHUNK)
            if not self.response_started:  # now the backend owes the answer
                self.client.set_deadline(self.client.plane.upstream_timeout, "upstream")

    # -- response, from the upstream --------------------------------------------------------

    def response_head(self, status: int, headers: list[bytes],
                      upstream_keep_alive: bool, has_length: bool, chunked_in: bool,
                      hop: bool) -> None:
        """The backend's response head: rewrite it and send it to the client.

        The upstream has already dropped Transfer-Encoding, Keep-Alive and a plain
        `Connection: keep-alive|close`; `hop` says whether other hop-by-hop headers remain.
        `headers` is an empty slot, then name, b": ", value, b"\r\n" for each header.
        The status line gets the standard reason phrase (HTTP/2 has none; no client may
        depend on it), which spares a parser callback per response.
        """
        if status == 101 and not self.upgrade:
            return self.upstream_failed()  # a switch nobody asked for (or that was refused)
        self.status = status
        self.response_started = True
        route = self.route
        assert route is not None
        client = self.client
        client.deadline = client.plane.now + client.plane.upstream_timeout
        client.deadline_kind = "upstream"
        tunnel = self.tunnel = status == 101
        no_body = self.head_only or status in _NO_BODY_STATUS
        svc, load = self.svc, self.load
        if svc is not None and load is not None:
            if status >= 500:
                svc.failed(load, f"status {status}", client.plane.now)
            else:
                svc.succeeded(load)
            if self.sent_at:
                now = client.plane.loop.time()
                observe(load, now - self.sent_at, now)
        status_line = _STATUS_LINE[status] if status < 600 else http1.status_line(status)
        if hop or route.remove_response_headers:
            lines = [status_line]
            pairs = list(zip(headers[1::4], headers[3::4], strict=True))
            filtered_response_headers(self, lines, pairs, tunnel)
        else:
            lines = headers
            lines[0] = status_line
        for name_s, value_s in route.add_response_headers:
            lines += (name_s.encode(), b": ", value_s.encode(), b"\r\n")
        if self.pinned and self.pinned != self.key and svc is not None:
            lines += (b"Set-Cookie: ", svc.key_name, b"=", self.pinned,
                      b"; Path=/; HttpOnly; SameSite=Lax\r\n")
        lines.append(_VIA_LINE)
        if client.tls and client.plane.https.hsts_line:
            lines.append(client.plane.https.hsts_line)
        if self.upstream is None or not self.upstream.has_date:
            lines.append(HTTP_DATE.line)  # RFC 9110 6.6.1: the backend has no clock
        if not self.request_complete and not tunnel:
            self.close_client = True  # the backend answered early; the rest of the body is moot
        if not no_body and not tunnel and (chunked_in or not has_length):
            if self.version == "1.1":
                self.response_chunked = True
                lines.append(b"Transfer-Encoding: chunked\r\n")
            else:
                self.close_client = True  # an HTTP/1.0 client reads to the end of the stream
        if tunnel:
            pass
        elif self.close_client or not self.keep_alive:
            lines.append(b"Connection: close\r\n")
        elif self.version == "1.0":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        client.write(b"".join(lines))
        upstream = self.upstream
        accel = upstream.accel_buffering if upstream is not None else b""
        # As nginx: X-Accel-Buffering from the backend overrides the route's `buffering`.
        self.buffering = not tunnel and (route.buffering if not accel else accel == b"yes")
        if no_body and not tunnel:
            if upstream is not None and self.head_only:
                self.upstream = None
                upstream.ex = None
                upstream.end_head_response(upstream_keep_alive and self.request_complete,
                                           client.plane.now)
            self.response_complete(upstream_keep_alive)

    def response_body(self, data: bytes) -> None:
        """A piece of the response body (de-chunked by the parser)."""
        if self.done or self.head_only:
            return
        self.response_bytes += len(data)
        client = self.client
        client.deadline = client.plane.now + client.plane.upstream_timeout
        framed = chunk(data) if self.response_chunked else data
        if self.buffer is not None or (self.buffering and client._writing_paused):
            self._hold(framed)
        elif self.buffering and len(framed) > WRITE_SLICE:
            self._write_sliced(framed)
        else:
            client.write(framed)

    def _write_sliced(self, data: bytes) -> None:
        """Hand a large piece to the client's transport a slice at a time, and keep what it
        cannot take yet in the buffer: one read from a backend can be 256 KiB, which a slow
        client's transport would otherwise hold in memory whole."""
        client = self.client
        client.flush()  # what the batch holds goes first
        view = memoryview(data)
        for start in range(0, len(view), WRITE_SLICE):
            if client._writing_paused:
                self._hold(view[start:])
                return
            client.write(bytes(view[start:start + WRITE_SLICE]))  # a copy frees `data`

    def _hold(self, data: bytes | memoryview) -> None:
        """Keep response bytes the client cannot take yet; a full buffer pauses the backend."""
        buffer = self.buffer
        if buffer is None:
            route = self.route
            assert route is not None
            buffer = self.buffer = ResponseBuffer(route.max_temp_file_size)
        buffer.add(data)
        if buffer.full() and not self.backend_paused and not self.answered:
            upstream = self.upstream
            if upstream is not None and upstream.transport is not None:
                self.backend_paused = True
                upstream.transport.pause_reading()
            client = self.client
            client.set_deadline(client.plane.idle_timeout, "send")  # the client's stall now

    def response_complete(self, upstream_keep_alive: bool) -> None:
        """The backend's response is complete: its connection is let go at once, even if
        the client has yet to take what is buffered of it."""
        if self.done:
            return
        buffer = self.buffer
        if self.response_chunked:
            if buffer is None:
                self.client.write(LAST_CHUNK)
            else:
                buffer.add(LAST_CHUNK)
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.ex = None
            if self.backend_paused and upstream.transport is not None:
                upstream.transport.resume_reading()
            self.backend_paused = False
            if upstream_keep_alive and self.request_complete and not upstream.closed:
                upstream.pool.put(upstream, self.client.plane.now)
            else:
                upstream.close()
        if buffer is None:
            self.finish()
            return
        self.answered = True
        if self.load is not None:
            self._release()  # the backend is free for the next request, the client is not
        client = self.client
        client.set_deadline(client.plane.idle_timeout, "send")

    def upstream_upgraded(self, rest: bytes) -> None:
        """The backend switched protocols: relay bytes both ways from now on."""
        if not self.tunnel:
            return self.fail(502)
        self.client.start_tunnel(self)
        if rest:
            self.client_write(rest)

    def upstream_failed(self) -> None:
        """The backend's response was not valid HTTP: 502, or a cut if it had started."""
        self._drop_upstream(close=True)
        self.fail(502)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        """The backend closed the connection while serving this exchange."""
        if self.done:
            return
        self.upstream = None
        if self.tunnel:
            self.client.close()
            return
        bodyless = self.content_length in (None, 0) and not self.body_chunked
        if not self.response_started and bodyless:
            if conn.uses > 1 and not self.retried:
                self.retried = True  # a reused connection closed under us: never seen there
                self.pending = []
                self._connect()
                return
            if self.method in _IDEMPOTENT:
                self.pending = []
                if self._retry("connection reset before the response"):
                    return
        elif self.svc is not None and self.load is not None:
            self.svc.failed(self.load, "connection lost", self.client.plane.now)
        self.fail(502)

    # -- the client side ----------------------------------------------------------------------

    def client_write(self, data: bytes) -> None:
        """Bytes for the client (tunnel mode)."""
        self.client.write(data)

    def client_pause_reading(self) -> None:
        """The upstream cannot take more: stop reading the request body."""
        self.client.pause_reading()

    def client_resume_reading(self) -> None:
        """The upstream drained: read the request body again."""
        self.client.resume_reading()

    def pause_upstream(self) -> None:
        """The client cannot take more: stop reading the response (unless it is buffered)."""
        if self.buffering and self.response_started:
            return
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_upstream(self) -> None:
        """The client drained: send it what is buffered, and read the response again."""
        buffer = self.buffer
        if buffer is not None:
            client = self.client
            while not client._writing_paused and not client.closed:
                data = buffer.take()
                if not data:
                    break
                self.client.write(data)
            if len(buffer):
                if self.backend_paused and not buffer.full():
                    self._resume_backend()
                if self.answered or self.backend_paused:
                    client.set_deadline(client.plane.idle_timeout, "send")
                return
            buffer.close()
            self.buffer = None
            if self.answered:
                self.finish()
                return
            if self.backend_paused:
                self._resume_backend()
                return
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def _resume_backend(self) -> None:
        self.backend_paused = False
        upstream = self.upstream
        if upstream is not None and upstream.transport is not None:
            upstream.transport.resume_reading()
        client = self.client
        client.set_deadline(client.plane.upstream_timeout, "upstream")

    def timed_out(self, kind: str) -> None:
        """A deadline passed: the client's body stalled (408), no backend freed up in time
        (503), a connect did not finish (retry, else 504), or the backend's answer (504)."""
        if kind == "connect":
            if self.connecting is not None:
                self.connecting.cancel()
                self.connecting = None
            if self._retry("connect timeout"):
                return
        elif kind == "upstream" and self.svc is not None and self.load is not None:
            self.svc.failed(self.load, "timeout", self.client.plane.now)
        self._drop_upstream(close=True)
        self.fail({"body": 408, "queue": 503}.get(kind, 504))

    def client_gone(self) -> None:
        """The client disconnected: abandon the backend connection (it may be mid-response),
        or the connect that was to make one."""
        self.done = True
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        if self.load is not None:
            self._release()
        self._drop_upstream(close=True)
        self._drop_buffer()

    # -- ending -------------------------------------------------------------------------------

    def respond(self, data: bytes, status: int) -> None:
        """Send a complete locally made response and finish."""
        self.status = status
        self.response_started = True
        self.response_bytes = len(data) - data.find(b"\r\n\r\n") - 4  # the body, as logged
        if self.client.tls and self.client.plane.https.hsts_line:
            data = self.client.plane.https.with_hsts(data)
        self.client.write(data)
        self.finish()

    def fail(self, status: int, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        """Answer with an error status if nothing was sent yet; else cut the connection."""
        if self.done:
            return
        self._drop_upstream(close=True)
        if self.response_started:
            self.done = True
            self.status = self.status or status
            if self.load is not None:
                self._release()
            self._drop_buffer()
            self.client.abort()
            return
        # As nginx: after a 400 or 413 the client is not trusted with the connection.
        self.close_client = self.close_client or not self.request_complete or \
            status == 400 or status == 413
        self.respond(http1.simple_response(status, close=self.close_client or not self.keep_alive,
                                           headers=headers, head_only=self.head_only), status)

    def finish(self) -> None:
        """The response is complete."""
        self.done = True
        if self.load is not None:
            self._release()
        self.client.exchange_finished(self)

    def _drop_buffer(self) -> None:
        if self.buffer is not None:
            self.buffer.close()
            self.buffer = None

    def _drop_upstream(self, close: bool) -> None:
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.ex = None
            if close:
                upstream.close()
