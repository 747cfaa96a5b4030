"""Forwarding a request: picking a backend, connecting, sending the head and the body.

A backend is picked by the service's balancer (a request waits in the service's queue while
every backend is at max_conns); a pooled connection is reused, or one is opened. A request
without a body that meets a reused connection closed under it is sent again once on a fresh
connection, as nginx and Go's transport do: the backend never saw it. Failed attempts are
retried on another backend while the service's retries and retry budget allow.

A request body is held back until it is complete or BODY_BUFFER bytes have arrived, so a body
whose chunked framing turns out malformed within that much never reaches a backend at all
(nginx buffers whole bodies by default; HAProxy streams). Larger bodies then stream, with
back-pressure: an upstream that cannot take more pauses reading from the client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

from wharf.addresses import UNIX
from wharf.proxy import http1
from wharf.proxy.balancers import NOTHING, Load
from wharf.proxy.downstream import BODY, CONNECT, QUEUE, UPSTREAM, Downstream, Peer
from wharf.proxy.http1 import LAST_CHUNK, chunk
from wharf.proxy.pool import Pool
from wharf.proxy.request import Request
from wharf.proxy.rewrite import request_head
from wharf.proxy.services import KEY_HEADER, KEY_IP, KEY_URI, ServiceState, Waiting
from wharf.proxy.upstream import Served, UpstreamConnection

if TYPE_CHECKING:
    from wharf.proxy.plane import DataPlane

# Methods a request may be sent again with after a reset (RFC 9110 9.2.2).
_IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
# How much of a request body is validated before the backend sees any of it.
BODY_BUFFER: Final = 64 * 1024
# While the backend connection is being made, read at most this much more of the body.
PENDING_LIMIT: Final = 256 * 1024
_UNIX: Final = len(UNIX)


class Forwarding(Request, Served, Waiting):
    """The request's way to a backend (a layer of the exchange: see `request`)."""

    __slots__ = (
        "connecting",
        "key",
        "load",
        "pending",
        "pending_size",
        "pinned",
        "pool",
        "retried",
        "sent_at",
        "svc",
        "tried",
        "tunnel",
        "upstream",
        "waiting_body",
    )

    def __init__(self, down: Downstream, peer: Peer, plane: DataPlane) -> None:
        super().__init__(down, peer, plane)
        self.upstream: UpstreamConnection | None = None
        self.pending: list[bytes] | None = []  # request bytes waiting for the upstream
        self.pending_size = 0
        self.waiting_body = False
        self.svc: ServiceState | None = None
        self.key: bytes | None = None
        self.load: Load | None = None
        self.pool: Pool | None = None
        self.tried: tuple[Load, ...] = ()  # a tuple: no list to make for every request
        self.sent_at = 0.0
        self.pinned = b""  # the sticky id of the chosen backend
        self.retried = False
        self.tunnel = False
        self.connecting: asyncio.Task[tuple[asyncio.Transport, asyncio.Protocol]] | None = None

    def _proceed(self) -> None:
        """A backend is chosen: connect now, or once the body is in hand."""
        if self.request_complete:
            self._connect()
            return
        if self.expect_continue and self.version == "1.1":  # RFC 9110 10.1.1: 1.0 ignores it
            self.down.send_head(http1.CONTINUE)
        self.waiting_body = True
        self.down.set_deadline(self.plane.header_timeout, BODY)

    # -- balancing ----------------------------------------------------------------------------

    def _balance_key(self, svc: ServiceState) -> bytes | None:
        kind = svc.key_kind
        if kind == KEY_IP:
            return self.client_ip()
        if kind == KEY_URI:
            return self.target
        if kind == KEY_HEADER:
            return self.header(svc.key_name)
        cookies = self.header(b"cookie")
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
                self.down.set_deadline(svc.service.queue_timeout, QUEUE)
                return False
            self.fail(503)
            return False
        self.backend = svc.backends[index]
        self.load = load = svc.loads[index]
        self.pool = svc.pools[index]
        if svc.sticky:
            self.pinned = svc.ids[index]
        load.inflight += 1
        if svc.measures_latency or self.plane.counting:
            self.sent_at = self.plane.loop.time()
        return True

    def dequeued(self) -> None:
        """A backend freed up while this request waited for one."""
        if not self.done and self._choose():
            self._proceed()

    def wait_on(self, svc: ServiceState) -> None:
        """A new snapshot's state of the service this request waits on took the queue."""
        self.svc = svc

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

    def _retry(self, reason: str, connect: bool = False) -> bool:
        """After a failed attempt (`connect`: to connect): try another backend if retries and
        the budget allow."""
        svc, load = self.svc, self.load
        if svc is None or load is None:
            return False
        self._failed(svc, load, reason, connect)
        if len(self.tried) >= svc.service.retries or not svc.may_retry():
            return False
        if self.plane.counting:
            self.plane.counters.service(svc.service.name).retries += 1
        self.tried += (load,)
        self._release()
        current = self.plane.services.get(svc.service.name)
        if current is None:
            return False
        self.svc = current  # a snapshot since may have taken backends out: not those
        if not self._choose(retrying=True):
            return False
        self._connect()
        return True

    # -- the upstream connection ------------------------------------------------------------

    def _connect(self) -> None:
        assert self.backend is not None and self.pool is not None
        pool = self.pool
        conn = pool.take()
        if conn is not None:
            assert isinstance(conn, UpstreamConnection)
            self._use(conn)
            return
        pool.created += 1
        self.down.set_deadline(self.plane.connect_timeout, CONNECT)
        loop = asyncio.get_running_loop()
        factory = cast(Callable[[], asyncio.Protocol], lambda: UpstreamConnection(pool))
        backend = self.backend
        if backend.port:
            task = loop.create_task(loop.create_connection(factory, backend.host, backend.port))
        else:  # a Unix socket: "unix:PATH", port 0 (see wharf.addresses)
            task = loop.create_task(loop.create_unix_connection(factory, backend.host[_UNIX:]))
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
            if not self._retry(f"connect: {exc}", connect=True):
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
            self.down.resume()
        if self.request_complete and self.body_chunked:
            conn.write(LAST_CHUNK)
        self.down.set_deadline(self.plane.upstream_timeout, UPSTREAM)

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        """The backend closed the connection while serving this exchange."""
        if self.done:
            return
        self.upstream = None
        if self.tunnel:
            self.down.close()
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
            self._failed(self.svc, self.load, "connection lost", False)
        self.fail(502)

    def backend_full(self) -> None:
        """The upstream cannot take more: stop reading the request body."""
        self.down.pause()

    def backend_drained(self) -> None:
        """The upstream drained: read the request body again."""
        self.down.resume()

    # -- request body, from the client ------------------------------------------------------

    def request_body(self, data: bytes, answering: bool) -> None:
        """A piece of the request body (already de-chunked); `answering`: this request is
        the one its client side answers now (else it waits its turn behind another)."""
        self.body_seen += len(data)
        if self.body_seen > self.plane.max_body_size:
            if not answering:  # queued: begin() answers 413 in its turn
                self.pending = None
                return
            return self.fail(413)
        framed = chunk(data) if self.body_chunked else data
        if self.upstream is not None:
            if not self.response_started:  # the body streams: now the backend's pace counts
                self.down.set_deadline(self.plane.upstream_timeout, UPSTREAM)
        elif self.connecting is None:  # a stalled upload is the client's fault: 408, not 504
            self.down.set_deadline(self.plane.header_timeout, BODY)
        if self.pending is not None:
            self.pending.append(framed)
            self.pending_size += len(framed)
            if self.waiting_body and self.pending_size >= BODY_BUFFER:
                self.waiting_body = False
                self._connect()
            elif self.pending_size > PENDING_LIMIT:
                self.down.pause()
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
                self.down.set_deadline(self.plane.upstream_timeout, UPSTREAM)

    # -- ending -------------------------------------------------------------------------------

    def timed_out(self, kind: str) -> None:
        """A deadline passed: the client's body stalled (408), no backend freed up in time
        (503), a connect did not finish (retry, else 504), or the backend's answer (504)."""
        if kind == CONNECT:
            if self.connecting is not None:
                self.connecting.cancel()
                self.connecting = None
            if self._retry("connect timeout", connect=True):
                return
        elif kind == UPSTREAM and not self.response_started and self.method in _IDEMPOTENT \
                and self.content_length in (None, 0) and not self.body_chunked:
            # nginx's `proxy_next_upstream timeout`: nothing of the answer reached the client,
            # so another backend may answer (a host cut off mid-request never will)
            self._drop_upstream()
            self.pending = []
            if self._retry("timeout"):
                return
        elif kind == UPSTREAM and self.svc is not None and self.load is not None:
            self._failed(self.svc, self.load, "timeout", False)
        elif kind == QUEUE and self.svc is not None and self.plane.counting:
            self.plane.counters.service(self.svc.service.name).queue_timeouts += 1
        self._drop_upstream()
        self.fail({BODY: 408, QUEUE: 503}.get(kind, 504))

    def client_gone(self) -> None:
        """The client disconnected: abandon the backend connection (it may be mid-response),
        or the connect that was to make one."""
        self.done = True
        if self.connecting is not None:
            self.connecting.cancel()
            self.connecting = None
        self._let_go()

    def _failed(self, svc: ServiceState, load: Load, reason: str, connect: bool) -> None:
        """Passive health hears of a failure of the chosen backend; so do its counters."""
        ejected = svc.failed(load, reason, self.plane.now)
        backend = self.backend
        if self.plane.counting and backend is not None:
            traffic = self.plane.counters.backend(svc.service.name, backend.host, backend.port)
            traffic.connect_errors += 1 if connect else 0
            traffic.ejections += 1 if ejected else 0

    def _count(self, complete: bool) -> None:
        """The route's counters, and those of the backend that answered, if one was chosen."""
        super()._count(complete)
        backend, svc = self.backend, self.svc
        if backend is not None and svc is not None:
            self.plane.counters.backend(svc.service.name, backend.host, backend.port).answered(
                self.status if complete else 0, self.plane.loop.time() - self.sent_at)

    def _let_go(self) -> None:
        self._drop_upstream()
        self._release()

    def _drop_upstream(self) -> None:
        """Let go of the backend's connection, closing it (it may be mid-response)."""
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.ex = None
            upstream.close()
