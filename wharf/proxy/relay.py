"""Relaying the backend's response to the client: the head rewritten, the body streamed or
buffered, or raw bytes both ways once a protocol switch is accepted.

Back-pressure: a full client transport pauses reading from the backend, unless the response is
buffered (wharf/proxy/buffering.py, as nginx's proxy_buffering): then the backend is read
ahead into a bounded buffer and released as soon as its whole answer is in, and only a full
buffer pauses it. Errors before the response has started become 502; after it has started,
the client connection is cut (a half-sent response cannot be mended).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from wharf.proxy import http1
from wharf.proxy.balancers.peak_ewma import observe
from wharf.proxy.buffering import ResponseBuffer
from wharf.proxy.date import HTTP_DATE
from wharf.proxy.downstream import SEND, UPSTREAM, Downstream, Peer
from wharf.proxy.forward import Forwarding
from wharf.proxy.http1 import LAST_CHUNK, chunk
from wharf.proxy.rewrite import filtered_response_headers

if TYPE_CHECKING:
    from wharf.proxy.plane import DataPlane

_STATUS_LINE: Final = [http1.status_line(code) for code in range(600)]
_VIA_LINE: Final = b"Via: " + http1.VIA + b"\r\n"
# With buffering on, larger pieces of a response go to the client in slices of this size, so
# that what its transport cannot send is kept by the response buffer instead.
WRITE_SLICE: Final = 64 * 1024


class Relaying(Forwarding):
    """The response's way back to the client (a layer of the exchange: see `request`)."""

    __slots__ = ("answered", "backend_paused", "buffer", "buffering", "response_chunked")

    def __init__(self, down: Downstream, peer: Peer, plane: DataPlane) -> None:
        super().__init__(down, peer, plane)
        self.response_chunked = False
        # Whether this response may be read ahead of its client, what waits for the client,
        # whether the backend is paused because that is full, and whether the backend's whole
        # answer is in.
        self.buffering = False
        self.buffer: ResponseBuffer | None = None
        self.backend_paused = False
        self.answered = False

    # -- from the upstream ------------------------------------------------------------------

    def read_begins(self) -> None:
        """A read from the backend is parsed: what it makes leaves in one send()."""
        self.down.open_batch()

    def read_ends(self) -> None:
        """The read is parsed."""
        self.down.flush()

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
        plane = self.plane
        down = self.down
        down.set_deadline(plane.upstream_timeout, UPSTREAM)
        tunnel = self.tunnel = status == 101
        no_body = self.head_only or status == 204 or status == 304  # (a set: a boxed int)
        svc, load = self.svc, self.load
        if svc is not None and load is not None:
            if status >= 500:
                self._failed(svc, load, f"status {status}", False)
            else:
                svc.succeeded(load)
            if self.sent_at and svc.measures_latency:  # (counting sets sent_at too)
                now = plane.loop.time()
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
        if self.peer.listener.tls and plane.https.hsts_line:
            lines.append(plane.https.hsts_line)
        upstream = self.upstream
        if upstream is None or not upstream.has_date:
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
        down.send_head(b"".join(lines))
        accel = upstream.accel_buffering if upstream is not None else b""
        # As nginx: X-Accel-Buffering from the backend overrides the route's `buffering`.
        self.buffering = not tunnel and (route.buffering if not accel else accel == b"yes")
        if no_body and not tunnel:
            if upstream is not None and self.head_only:
                self.upstream = None
                upstream.ex = None
                upstream.end_head_response(upstream_keep_alive and self.request_complete,
                                           plane.now)
            self.response_complete(upstream_keep_alive)

    def response_body(self, data: bytes) -> None:
        """A piece of the response body (de-chunked by the parser)."""
        if self.done or self.head_only:
            return
        self.response_bytes += len(data)
        down = self.down
        if not self.backend_paused:  # else the client's stall is what the deadline watches
            down.set_deadline(self.plane.upstream_timeout, UPSTREAM)
        framed = chunk(data) if self.response_chunked else data
        if self.buffer is not None or (self.buffering and down.writing_paused):
            self._hold(framed)
        elif self.buffering and len(framed) > WRITE_SLICE:
            self._write_sliced(framed)
        else:
            down.send(framed)

    def _write_sliced(self, data: bytes) -> None:
        """Hand a large piece to the client's transport a slice at a time, and keep what it
        cannot take yet in the buffer: one read from a backend can be 256 KiB, which a slow
        client's transport would otherwise hold in memory whole."""
        down = self.down
        down.flush()  # what the batch holds goes first
        view = memoryview(data)
        for start in range(0, len(view), WRITE_SLICE):
            if down.writing_paused:
                self._hold(view[start:])
                return
            down.send(bytes(view[start:start + WRITE_SLICE]))  # a copy frees `data`

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
            self.down.set_deadline(self.plane.idle_timeout, SEND)  # the client's stall now

    def response_complete(self, upstream_keep_alive: bool) -> None:
        """The backend's response is complete: its connection is let go at once, even if
        the client has yet to take what is buffered of it."""
        if self.done:
            return
        buffer = self.buffer
        if self.response_chunked:
            if buffer is None:
                self.down.send(LAST_CHUNK)
            else:
                buffer.add(LAST_CHUNK)
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            upstream.ex = None
            if self.backend_paused and upstream.transport is not None:
                upstream.transport.resume_reading()
            self.backend_paused = False
            if upstream_keep_alive and self.request_complete and not upstream.closed:
                upstream.park(self.plane.now)
            else:
                upstream.close()
        if buffer is None:
            self.finish()
            return
        self.answered = True
        self._release()  # the backend is free for the next request, the client is not
        self.down.set_deadline(self.plane.idle_timeout, SEND)

    def upstream_upgraded(self, rest: bytes) -> None:
        """The backend switched protocols: relay bytes both ways from now on."""
        if not self.tunnel:
            return self.fail(502)
        self.down.start_tunnel()
        if rest:
            self.down.send(rest)

    def upstream_failed(self) -> None:
        """The backend's response was not valid HTTP: 502, or a cut if it had started."""
        self._drop_upstream()
        self.fail(502)

    def tunnel_out(self, data: bytes) -> None:
        """Bytes from the backend, once the protocol switched."""
        self.down.send(data)

    # -- from the client side ---------------------------------------------------------------

    def tunnel_in(self, data: bytes) -> None:
        """Bytes from the client, once the protocol switched."""
        upstream = self.upstream
        if upstream is not None:
            upstream.write(data)

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
            down = self.down
            while not down.writing_paused and not down.closed:
                data = buffer.take()
                if not data:
                    break
                down.send(data)
            if len(buffer):
                if self.backend_paused and not buffer.full():
                    self._resume_backend()
                if self.answered or self.backend_paused:
                    down.set_deadline(self.plane.idle_timeout, SEND)
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
        self.down.set_deadline(self.plane.upstream_timeout, UPSTREAM)

    def _let_go(self) -> None:
        super()._let_go()
        if self.buffer is not None:
            self.buffer.close()
            self.buffer = None
