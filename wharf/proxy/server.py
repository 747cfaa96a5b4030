"""The client side of the proxy: one asyncio protocol per client connection.

It feeds bytes to llhttp, turns each request head into an Exchange, and answers requests in
order (pipelined requests wait their turn, with reading paused). Limits: a head larger than
`max_header_size` gets 431; a head not finished within `header_timeout` (slowloris), or a
keep-alive connection idle for `idle_timeout`, is closed. Any parse error gets 400 and the
connection closes: a malformed request never reaches a backend.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

import httptools

from wharf.proxy import http1
from wharf.proxy.exchange import Exchange
from wharf.proxy.routing import upgrade_allowed

if TYPE_CHECKING:
    from wharf.proxy.plane import DataPlane

log = logging.getLogger("wharf.proxy")


class _Rejected(Exception):
    """Raised in a parser callback to refuse a request; llhttp then stops parsing."""


# Request headers that need more than forwarding, by lower-case name. Checking the length of
# a name first keeps the common headers (Accept, User-Agent...) to one set lookup.
_HOST: Final = 0
_EXPECT: Final = 1
_REQUEST_ID: Final = 2
_LENGTH: Final = 3
_CODING: Final = 4
_HOP: Final = 5
_FORWARDED: Final = 6
_SPECIAL: Final = {b"host": _HOST, b"expect": _EXPECT, b"x-request-id": _REQUEST_ID,
                   b"content-length": _LENGTH, b"transfer-encoding": _CODING,
                   **dict.fromkeys(http1.HOP_BY_HOP - {b"transfer-encoding"}, _HOP),
                   **dict.fromkeys(http1.FORWARDED, _FORWARDED)}
_SPECIAL_LENGTHS: Final = frozenset(len(name) for name in _SPECIAL)
# The same names as clients usually spell them ("Host"): found without lower-casing.
_SPECIAL_AS_SENT: Final = {**_SPECIAL, **{name.title(): kind for name, kind in _SPECIAL.items()}}


# _upgrade_refused: none, or the request that was refused has no body, or has one.
_NO_REFUSAL: Final = 0
_REFUSED: Final = 1
_REFUSED_WITH_BODY: Final = 2
# _replay: no, or its end of message is llhttp's skip of the body, or its framing head is fed.
_NO_REPLAY: Final = 0
_SKIPPED_END: Final = 1
_FRAMING_HEAD: Final = 2
# While an Upgrade request waits for its answer, the client's bytes for the new protocol are
# kept; past this much, reading from the client pauses until the backend has switched.
UPGRADE_AHEAD_LIMIT: Final = 64 * 1024


def _nowhere(data: bytes) -> None:
    """The writer of a connection not yet made."""


def _note_header(ex: Exchange, kind: int, value: bytes) -> None:
    if kind == _HOST:
        if ex.host:
            raise _Rejected  # RFC 9112 3.2: more than one Host is a 400
        ex.host = value
    elif kind == _LENGTH:
        ex.content_length = int(value)  # llhttp has checked it is digits, and only one
    elif kind == _CODING:
        if value.strip().lower() != b"chunked":
            raise _Rejected  # a coding before chunked, which we would have to undo
        ex.body_chunked = True
        ex.plain = False
    elif kind == _REQUEST_ID:
        ex.x_request_id = value
    else:
        ex.plain = False
        if kind == _EXPECT:
            ex.expect_continue = value.lower() == b"100-continue"


class ClientConnection:
    """One client's connection: parsing, ordering, deadlines, back-pressure."""

    __slots__ = (
        "_batch",
        "_eof",
        "_feed",
        "_get_method",
        "_get_version",
        "_head_size",
        "_in_head",
        "_keep_alive",
        "_paused",
        "_queue",
        "_refusal",
        "_reject",
        "_replay",
        "_tunnel_buffer",
        "_tunnel_size",
        "_upgrade_refused",
        "_write",
        "_writing_paused",
        "active",
        "closed",
        "deadline",
        "deadline_kind",
        "ex",
        "forwarded_lines",
        "host_name",
        "host_seen",
        "parser",
        "peer_ip",
        "plane",
        "tls",
        "transport",
        "trusted",
        "tunnel_to",
    )

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane
        self.transport: asyncio.Transport | None = None
        parser = self.parser = httptools.HttpRequestParser(self)
        # Bound once: a method looked up by name on every request costs more than the call.
        self._feed: Callable[[bytes], None] = parser.feed_data
        self._get_method: Callable[[], bytes] = parser.get_method
        self._get_version: Callable[[], str] = parser.get_http_version
        self._keep_alive: Callable[[], bool] = parser.should_keep_alive
        self._write: Callable[[bytes], None] = _nowhere
        self.peer_ip = b""
        self.trusted = False
        self.tls = False  # came over a TLS listener
        self.forwarded_lines = b""  # X-Forwarded-For/Proto and Via, for this client
        self.host_seen = b""  # the last Host header, and the name it routes by (lower case,
        self.host_name = b""  # no port): worked out once per client connection, not request
        self.ex: Exchange | None = None  # the request being parsed
        self.active: Exchange | None = None  # the request being answered
        self._queue: deque[Exchange] = deque()
        self._in_head = False
        self._head_size = 0
        self._paused = False
        self._writing_paused = False
        self.deadline = 0.0
        self.deadline_kind = ""
        self.closed = False
        self.tunnel_to: Exchange | None = None
        self._tunnel_buffer: list[bytes] = []
        self._tunnel_size = 0
        self._reject = 0  # the status of a request refused inside a parser callback
        self._eof = False
        self._refusal = 0  # a parse error to answer once the responses owed are sent
        self._batch: list[bytes] | None = None
        # A refused Upgrade makes llhttp skip the body and stop, as if the protocol switched:
        # the rest is parsed on as HTTP, the body through a framing head fed in its place.
        self._upgrade_refused = _NO_REFUSAL
        self._replay = _NO_REPLAY

    def __repr__(self) -> str:
        return f"<ClientConnection {self.peer_ip.decode()} active={self.active!r}>"

    # -- the asyncio protocol (by its methods: mypyc compiles no subclass of asyncio.Protocol) -

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._write = self.transport.write
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else "127.0.0.1"
        self.peer_ip = ip.encode()
        self.trusted = self.plane.is_trusted(ip)
        self.tls = transport.get_extra_info("sslcontext") is not None
        self.forwarded_lines = b"X-Forwarded-For: %s\r\nX-Forwarded-Proto: %s\r\nVia: %s\r\n" \
            % (self.peer_ip, b"https" if self.tls else b"http", http1.VIA)
        self.plane.connections.add(self)
        self.set_deadline(self.plane.header_timeout, "header")

    def data_received(self, data: bytes) -> None:
        if self.tunnel_to is not None:
            upstream = self.tunnel_to.upstream
            if upstream is not None:
                upstream.write(data)
            return
        if self.ex is None and self.active is not None and self.active.upgrade:
            self._hold_for_tunnel(data)  # early bytes for a protocol switch in progress
            return
        if not self._in_head and self.ex is None:
            self._in_head = True
            self._head_size = 0
            self.set_deadline(self.plane.header_timeout, "header")
        if self._in_head:
            self._head_size += len(data)
        rest: bytes | None = None
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade as exc:
            rest = data[exc.args[0]:]
        except httptools.HttpParserError as exc:
            return self._parse_error(exc)
        if rest is not None:  # outside the handler, or a parse error would have it as cause
            try:
                self._after_upgrade(rest)
            except httptools.HttpParserError as exc:
                return self._parse_error(exc)
        if self._in_head and self._head_size > self.plane.max_header_size:
            self._bad_request(431)

    def _parse_error(self, exc: httptools.HttpParserError) -> None:
        cause = exc.__context__
        if cause is not None and not isinstance(cause, _Rejected):
            # A bug of ours inside a parser callback: the client is not at fault.
            log.error("wharf-proxy: internal error", exc_info=cause)
            self._bad_request(500)
            return
        self._bad_request(self._reject or 400)

    def _after_upgrade(self, rest: bytes) -> None:
        """llhttp stopped after a request with Upgrade: tunnel what follows, or parse on."""
        while True:
            refused, self._upgrade_refused = self._upgrade_refused, _NO_REFUSAL
            if refused == _NO_REFUSAL:
                if rest:
                    self._hold_for_tunnel(rest)
                return
            if refused == _REFUSED_WITH_BODY:
                ex = self.ex
                if ex is None:
                    return
                self._new_parser()  # llhttp takes nothing more after `Connection: close`
                self._replay = _FRAMING_HEAD
                rest = (b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" if ex.body_chunked
                        else b"PUT / HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                        % (ex.content_length or 0)) + rest
            if not rest:
                return
            try:
                self._feed(rest)
                return
            except httptools.HttpParserUpgrade as exc:  # the next request asks to upgrade too
                rest = rest[exc.args[0]:]

    def _new_parser(self) -> None:
        parser = self.parser = httptools.HttpRequestParser(self)
        self._feed = parser.feed_data
        self._get_method = parser.get_method
        self._get_version = parser.get_http_version
        self._keep_alive = parser.should_keep_alive

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

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self.active is not None:
            self.active.pause_upstream()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self.active is not None:
            self.active.resume_upstream()
        self.plane.static.resume(self)

    # -- llhttp callbacks ---------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        ex = self.ex
        if self._replay == _FRAMING_HEAD:
            return
        if ex is None:
            self.ex = ex = Exchange(self)
            ex.target = url
            if not self._in_head:  # a pipelined head that began inside the last read
                self._in_head = True
                self._head_size = 0
                if self.active is None:
                    self.set_deadline(self.plane.header_timeout, "header")
        else:
            ex.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        ex = self.ex
        assert ex is not None
        size = len(name)
        ex.head_size += size + len(value) + 4
        if b"_" in name and not self.plane.underscores_in_headers:
            return  # as nginx: X_Forwarded_For would reach a WSGI app as X-Forwarded-For
        ex.headers.append((name, value))
        if size in _SPECIAL_LENGTHS:
            kind = _SPECIAL_AS_SENT.get(name)
            if kind is None:
                kind = _SPECIAL.get(name.lower())
            if kind is not None:
                _note_header(ex, kind, value)

    def on_headers_complete(self) -> None:
        ex = self.ex
        assert ex is not None
        if self._replay == _FRAMING_HEAD:  # the head that frames a refused upgrade's body
            self._replay = _NO_REPLAY
            ex.headers.pop()
            return
        parser = self.parser
        self._in_head = False
        if self.active is None:  # else the deadline is the answer's, not this head's
            self.deadline = 0.0
        if ex.head_size + len(ex.target) > self.plane.max_header_size:
            self._reject = 431
            raise _Rejected
        ex.method = self._get_method()
        # Without a Connection header (plain), only HTTP/1.1 keeps alive (llhttp refuses 1.2
        # to 1.9), so asking that spares formatting the version string for most requests.
        if ex.plain and self._keep_alive():
            version = "1.1"
            ex.keep_alive = True
        else:
            version = self._get_version()
            ex.keep_alive = self._keep_alive()
            if version != "1.1" and (version != "1.0" or ex.body_chunked):
                # HTTP/0.9 and 2.0, which llhttp accepts: no HTTP/1 to route. And RFC 9112
                # 6.1: Transfer-Encoding in 1.0 is a faulty framing, to answer 400 and close.
                raise _Rejected
        ex.version = version
        if not ex.plain and parser.should_upgrade():
            ex.upgrade = upgrade_allowed(ex)
            if not ex.upgrade:
                has_body = ex.body_chunked or bool(ex.content_length)
                self._upgrade_refused = _REFUSED_WITH_BODY if has_body else _REFUSED
                if has_body:
                    self._replay = _SKIPPED_END
        ex.request_id = ex.x_request_id or self.plane.next_request_id()
        if not ex.body_chunked and not ex.content_length:
            ex.request_complete = True
        if self.active is None:
            self.active = ex
            ex.begin()
        else:
            self._queue.append(ex)
            self.pause_reading()

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        if ex is not None and not ex.done:
            ex.request_body(body)

    def on_message_complete(self) -> None:
        if self._replay == _SKIPPED_END:  # not the end: the body was skipped, read it now
            self._replay = _NO_REPLAY
            return
        ex, self.ex = self.ex, None
        if ex is not None and not ex.request_complete:
            ex.request_end()
        if self.active is None and not self.closed:  # answered already (404, static...)
            self.set_deadline(self.plane.idle_timeout, "idle")

    # -- used by the exchange -----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send bytes to the client (gathered while a batch is open)."""
        if self._batch is not None:
            self._batch.append(data)
        elif not self.closed:
            self._write(data)

    def open_batch(self) -> None:
        """Gather writes until `flush`: a response head and body then leave in one send()."""
        if self._batch is None:
            self._batch = []

    def flush(self) -> None:
        """Send what a batch gathered."""
        batch, self._batch = self._batch, None
        if batch and not self.closed:
            self._write(batch[0] if len(batch) == 1 else b"".join(batch))

    def client_ip(self, ex: Exchange) -> bytes:
        """The client's address: the peer, unless the peer is a trusted proxy; then the last
        address of X-Forwarded-For that is not a trusted proxy (nginx's real_ip_recursive).
        The addresses left of it were written by the client itself and prove nothing."""
        if not self.trusted:
            return self.peer_ip
        chain = [address.strip() for name, value in ex.headers
                 if len(name) == 15 and name.lower() == b"x-forwarded-for"
                 for address in value.split(b",")]
        for address in reversed(chain):
            if address and not self.plane.is_trusted(address.decode("latin-1")):
                return address
        return chain[0] if chain and chain[0] else self.peer_ip  # every hop trusted

    def set_deadline(self, seconds: float, kind: str) -> None:
        """Arm the one deadline this connection has (checked by the worker's sweep)."""
        self.deadline = self.plane.now + seconds
        self.deadline_kind = kind

    def pause_reading(self) -> None:
        """Stop reading from the client (back-pressure, or pipelined requests waiting)."""
        if not self._paused and self.transport is not None and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read from the client again."""
        if self._paused and self.transport is not None and not self.closed and not self._queue:
            self._paused = False
            self.transport.resume_reading()

    def exchange_finished(self, ex: Exchange) -> None:
        """The response of `ex` is complete: log it, then close or serve the next request."""
        self.plane.log_access(self, ex)
        if ex is not self.active:
            return
        self.active = None
        # After an Upgrade that was allowed but not taken, what llhttp left is not parseable.
        if ex.close_client or not ex.keep_alive or ex.upgrade or self.closed or (
                self._eof and not self._queue):
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
                self.resume_reading()
            return
        self.resume_reading()
        if self.ex is None:
            self.set_deadline(self.plane.idle_timeout, "idle")

    def _hold_for_tunnel(self, data: bytes) -> None:
        self._tunnel_buffer.append(data)
        self._tunnel_size += len(data)
        if self._tunnel_size > UPGRADE_AHEAD_LIMIT:
            self.pause_reading()

    def start_tunnel(self, ex: Exchange) -> None:
        """Switch to relaying raw bytes between the client and `ex`'s upstream."""
        self.tunnel_to = ex
        self.deadline = 0.0
        buffered, self._tunnel_buffer = self._tunnel_buffer, []
        self._tunnel_size = 0
        if buffered and ex.upstream is not None:
            ex.upstream.write(b"".join(buffered))
        self.resume_reading()

    def timed_out(self, now: float) -> None:
        """The deadline passed: close an idle or slow client, or fail a slow upstream."""
        kind = self.deadline_kind
        self.deadline = 0.0
        if kind in ("connect", "upstream", "body", "queue") and self.active is not None:
            self.active.timed_out(kind)
        elif kind == "send":
            self.abort()  # it does not read: a graceful close would wait on it forever
        else:
            self.close()

    def close(self) -> None:
        """Close after what was written has been sent."""
        self.flush()
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Cut the connection now (a response was cut short)."""
        self._batch = None
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

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
            self.pause_reading()

    def _refuse(self, status: int) -> None:
        self.write(http1.simple_response(status, close=True))
        self.plane.log_access(self, None, status)
        self.close()
