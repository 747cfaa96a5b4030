"""The client side of the proxy: one asyncio protocol per client connection (HTTP/1).

It feeds bytes to llhttp (`reader.RequestReader`), turns each request head into an Exchange,
and answers requests in order (pipelined requests wait their turn, with reading paused). It is
the `downstream.Downstream` of its exchanges: they send through it, end or cut their answer,
pause it, and ask it for deadlines; it owns its one deadline and its timers. Limits: a head
larger than `max_header_size` gets 431; a head not finished within `header_timeout`
(slowloris), or a keep-alive connection idle for `idle_timeout`, is closed. Any parse error
gets 400 and the connection closes: a malformed request never reaches a backend.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

from wharf.proxy import http1
from wharf.proxy.downstream import EXCHANGE_DEADLINES, PLAIN, SEND, Downstream, Listener, Peer
from wharf.proxy.exchange import Exchange
from wharf.proxy.reader import RequestReader

if TYPE_CHECKING:
    from wharf.proxy.plane import DataPlane

# While an Upgrade request waits for its answer, the client's bytes for the new protocol are
# kept; past this much, reading from the client pauses until the backend has switched.
UPGRADE_AHEAD_LIMIT: Final = 64 * 1024
# The peer of a connection not made yet (a TLS one until its handshake is done): nothing
# reads it, as no request is parsed before connection_made.
UNCONNECTED: Final = Peer(b"", False, PLAIN, http1.VIA)


def _nowhere(data: bytes) -> None:
    """The writer of a connection not yet made."""


class ClientConnection(RequestReader, Downstream):
    """One client's connection: parsing, ordering, deadlines, back-pressure; the
    `Downstream` of the exchanges it creates."""

    __slots__ = (
        "_batch",
        "_batching",
        "_eof",
        "_paused",
        "_queue",
        "_refusal",
        "_tunnel_buffer",
        "_tunnel_size",
        "_write",
        "listener",
        "transport",
        "tunnel_to",
        "writing_paused",
    )

    def __init__(self, plane: DataPlane, listener: Listener = PLAIN) -> None:
        super().__init__(plane, UNCONNECTED)  # connection_made makes its own
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self._write: Callable[[bytes], None] = _nowhere
        self._queue: deque[Exchange] = deque()
        self._paused = False
        self.writing_paused = False
        self.tunnel_to: Exchange | None = None
        self._tunnel_buffer: list[bytes] = []
        self._tunnel_size = 0
        self._eof = False
        self._refusal = 0  # a parse error to answer once the responses owed are sent
        # What a batch gathered (open_batch ... flush); one list for the connection's life.
        self._batching = False
        self._batch: list[bytes] = []

    def __repr__(self) -> str:
        return f"<ClientConnection {self.peer.ip.decode()} active={self.active!r}>"

    # -- the asyncio protocol (by its methods: mypyc compiles no subclass of asyncio.Protocol) -

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._write = self.transport.write
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else "127.0.0.1"
        self.peer = Peer(ip.encode(), self.plane.is_trusted(ip), self.listener, http1.VIA)
        self.plane.connections.add(self)
        self.set_deadline(self.plane.header_timeout, "header")

    def data_received(self, data: bytes) -> None:
        if self.tunnel_to is not None:
            self.tunnel_to.tunnel_in(data)
            return
        if self.ex is None and self.active is not None and self.active.upgrade:
            self._hold_for_tunnel(data)  # early bytes for a protocol switch in progress
            return
        self._parse(data)

    def eof_received(self) -> bool | None:
        if self.active is not None and not self.closed and self.tunnel_to is None:
            self._eof = True
            return True  # half-close: let the response finish, then close
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.plane.connections.discard(self)
        self.plane.static.abandon(self)
        for ex in (self.active, self.ex, *self._queue):
            if ex is not None and not ex.done:
                ex.client_gone()
        self.active = self.ex = None
        self._queue.clear()
        self._let_go_of_parser()

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.active is not None:
            self.active.pause_upstream()

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.active is not None:
            self.active.resume_upstream()
        self.plane.static.resume(self)

    # -- requests, as the reader parses them --------------------------------------------------

    def _new_exchange(self) -> Exchange:
        return Exchange(self, self.peer, self.plane)

    def _request_ready(self, ex: Exchange) -> None:
        if self.active is None:
            self.active = ex
            ex.begin()
        else:
            self._queue.append(ex)
            self.pause()

    def _hold_for_tunnel(self, data: bytes) -> None:
        self._tunnel_buffer.append(data)
        self._tunnel_size += len(data)
        if self._tunnel_size > UPGRADE_AHEAD_LIMIT:
            self.pause()

    def _bad_request(self, status: int) -> None:
        """Refuse what is being parsed; answers already owed are sent first."""
        ex, self.ex = self.ex, None
        if ex is not None and ex is self.active and not ex.response_started:
            ex.fail(status)  # its body turned out malformed: the backend gets nothing more
            return
        if ex is not None and not ex.done:
            ex.client_gone()
        if self.active is None:
            self._refuse(status)
        else:
            self._refusal = status  # after the responses in progress
            self.pause()

    def _refuse(self, status: int) -> None:
        self.send(http1.simple_response(status, close=True))
        self.plane.log_access(self.peer.ip, None, status)
        self.close()

    # -- the Downstream of the exchanges ------------------------------------------------------

    def send_head(self, head: bytes) -> None:
        """Send a response head (on HTTP/1, its bytes as they are)."""
        self.send(head)

    def send(self, data: bytes) -> None:
        """Send bytes to the client (gathered while a batch is open)."""
        if self._batching:
            self._batch.append(data)
        elif not self.closed:
            self._write(data)

    def open_batch(self) -> None:
        """Gather writes until `flush`: a response head and body then leave in one send()."""
        self._batching = True

    def flush(self) -> None:
        """Send what a batch gathered."""
        data = self._take_batch()
        if data and not self.closed:
            self._write(data)

    def _take_batch(self) -> bytes:
        """What the batch gathered, in one piece (a head and its body: concatenated, not
        joined), and the batch closed."""
        self._batching = False
        batch = self._batch
        count = len(batch)
        if count == 0:
            return b""
        data = batch[0] if count == 1 else batch[0] + batch[1] if count == 2 else \
            b"".join(batch)
        batch.clear()
        return data

    def pause(self) -> None:
        """Stop reading from the client (back-pressure, or pipelined requests waiting)."""
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """Read from the client again (not while pipelined requests wait their turn)."""
        if self._paused and self.transport is not None and not self.closed and not self._queue:
            self._paused = False
            self.transport.resume_reading()

    def raw_socket(self) -> socket.socket | None:
        """The socket, when it may be written to directly: plain TCP, nothing unsent."""
        transport = self.transport
        if transport is None or self.listener.tls or transport.get_write_buffer_size():
            return None
        return cast("socket.socket | None", transport.get_extra_info("socket"))

    def end(self, keep_alive: bool) -> None:
        """The answer in progress is complete: close, or serve the next request."""
        self.active = None
        # After an Upgrade that was allowed but not taken, what llhttp left is not parseable:
        # the exchange does not keep alive then.
        if not keep_alive or self.closed or (self._eof and not self._queue):
            self.close()
            return
        if not self._queue and self._refusal:
            self._refuse(self._refusal)
            return
        if self._queue:
            nxt = self._queue.popleft()
            self.active = nxt
            nxt.begin()
            if not self._queue:  # its body, or the next request, may still be unread
                self.resume()
            return
        self.resume()
        if self.ex is None:
            self.set_deadline(self.plane.idle_timeout, "idle")

    def start_tunnel(self) -> None:
        """Switch to relaying raw bytes between the client and the active exchange."""
        ex = self.tunnel_to = self.active
        self.deadline = 0.0
        buffered, self._tunnel_buffer = self._tunnel_buffer, []
        self._tunnel_size = 0
        if buffered and ex is not None:
            ex.tunnel_in(b"".join(buffered))
        self.resume()

    def close(self) -> None:
        """Close after what was written has been sent."""
        self.flush()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Cut the connection now (a response was cut short)."""
        self._batching = False
        self._batch.clear()
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    # -- for the worker -----------------------------------------------------------------------

    def timed_out(self, now: float) -> None:
        """The deadline passed: close an idle or slow client, or fail a slow upstream."""
        kind = self.deadline_kind
        self.deadline = 0.0
        if kind in EXCHANGE_DEADLINES and self.active is not None:
            self.active.timed_out(kind)
        elif kind == SEND:
            self.abort()  # it does not read: a graceful close would wait on it forever
        else:
            self.close()

    def answering(self) -> bool:
        """A request is being answered (a tunnel is not one any more)."""
        return self.active is not None and self.tunnel_to is None
