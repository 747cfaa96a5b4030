"""One connection from the proxy to a backend: sends a request, relays the response.

It parses the response with llhttp and hands events to the exchange it serves, which it
knows only as `Served` (defined here: this module imports no other layer of the exchange).
Between requests it sits in its backend's pool; if the backend closes it there,
`connection_lost` takes it out of the pool at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol, cast

import httptools

from wharf.proxy.http1 import HOP_BY_HOP, KnownHeaders

if TYPE_CHECKING:
    from wharf.proxy.pool import Pool


# X-Accel-Buffering is for the proxy only: nginx hides it from clients too.
_ACCEL: Final = b"x-accel-buffering"
_SPECIAL_NAMES: Final = HOP_BY_HOP | {b"content-length", b"date", _ACCEL}
_KNOWN: Final = KnownHeaders({n: n for n in _SPECIAL_NAMES})  # each to its lower case


def _nowhere(data: bytes) -> None:
    """write() of a connection not yet made."""
    raise ConnectionError("not connected")


def _not_connected() -> bool:
    """is_closing() of a connection not yet made: as good as closed."""
    return True


class _Gone:
    """The protocol of the parser a closed connection keeps (it has nothing to parse)."""


_SPENT: Final = httptools.HttpResponseParser(_Gone())


class Served(Protocol):
    """What an upstream connection reports to: the exchange it serves (which names this
    Protocol as a base, so that mypyc calls it natively). Read-only attributes: `tunnel`, the
    protocol switched and bytes are relayed raw; `response_started`, a head was relayed."""

    __slots__ = ()

    tunnel: bool
    response_started: bool

    def read_begins(self) -> None:
        """A read from the backend is about to be parsed."""

    def read_ends(self) -> None:
        """That read is parsed (what it made for the client may leave now)."""

    def response_head(self, status: int, headers: list[bytes], upstream_keep_alive: bool,
                      has_length: bool, chunked_in: bool, hop: bool) -> None:
        """The response head (interim 1xx ones are dropped before)."""

    def response_body(self, data: bytes) -> None:
        """A piece of the response body, de-chunked."""

    def response_complete(self, upstream_keep_alive: bool) -> None:
        """The response ended; the connection may be reused if `upstream_keep_alive`."""

    def upstream_upgraded(self, rest: bytes) -> None:
        """The backend switched protocols; `rest` is what followed its 101 head."""

    def upstream_failed(self) -> None:
        """The response is not valid HTTP."""

    def upstream_lost(self, conn: UpstreamConnection) -> None:
        """The backend closed the connection."""

    def tunnel_out(self, data: bytes) -> None:
        """Raw bytes from the backend, after a protocol switch."""

    def backend_full(self) -> None:
        """The backend's connection cannot take more of the request now."""

    def backend_drained(self) -> None:
        """It can again."""


class UpstreamConnection:
    """A keep-alive HTTP/1.1 connection to one backend."""

    __slots__ = ("_feed", "_is_closing", "_keep_alive", "_parser", "_status", "_write",
                 "accel_buffering", "chunked", "closed", "ex", "has_date", "has_length",
                 "headers", "hop", "idle_since", "pool", "reuse", "stale", "stray", "transport",
                 "until_eof", "uses")

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self._is_closing: Callable[[], bool] = _not_connected
        self._write: Callable[[bytes], None] = _nowhere
        self._bind(httptools.HttpResponseParser(self))
        self.ex: Served | None = None
        self.idle_since = 0.0
        self.closed = False
        # The response's header lines as they will be sent: a slot for the status line, then
        # name, b": ", value, b"\r\n" for each header (no tuple per header, no second pass).
        self.headers: list[bytes] = [b""]
        self.uses = 0
        # What on_header saw of the current response's framing and hop-by-hop headers.
        self.has_length = False
        self.has_date = False  # else the proxy adds one (RFC 9110 6.6.1)
        self.chunked = False
        self.hop = False
        self.accel_buffering = b""  # X-Accel-Buffering of the current response, lower case
        self.until_eof = False  # the response's body runs until the backend closes
        self.stale = False  # the parser running now is a replaced one (see end_head_response)
        self.stray = False  # and it saw bytes the backend should not have sent
        self.reuse = False  # the connection goes back to the pool once that read is parsed

    def __repr__(self) -> str:
        return f"<UpstreamConnection uses={self.uses} closed={self.closed} ex={self.ex!r}>"

    # -- pool interface -----------------------------------------------------------------------

    def is_closed(self) -> bool:
        """True once the connection is closing or closed."""
        return self.closed or self._is_closing()

    def park(self, now: float) -> None:
        """Go back to the pool, idle since `now` (`Pool.put`, without its generic calls)."""
        if not self.is_closed():
            self.idle_since = now
            self.pool.keep(self)

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- serving one exchange -----------------------------------------------------------------

    def attach(self, ex: Served) -> None:
        """Serve `ex` next; its request will be written by the exchange."""
        self.ex = ex
        self.uses += 1
        self.headers = [b""]

    def write(self, data: bytes) -> None:
        """Send request bytes."""
        self._write(data)

    def end_head_response(self, reuse: bool, now: float) -> None:
        """The response to a HEAD ends with its head, whatever the head says of a body; llhttp
        cannot be told so and reads on. The exchange has let go of this connection; a fresh
        parser takes the next response, and the connection returns to the pool (if `reuse`)
        only once the rest of this read is parsed: whatever the old parser still finds in it
        is bytes the backend should not have sent, and closes the connection instead."""
        self._bind(httptools.HttpResponseParser(self))
        self.stale = True
        self.reuse = reuse
        self.idle_since = now

    def _after_stale(self) -> None:
        self.stale = False
        self.headers = [b""]
        self.has_length = self.chunked = self.hop = self.until_eof = self.has_date = False
        if self.stray or not self.reuse:
            self.stray = False
            self.close()
        else:
            self.pool.put(self, self.idle_since)

    def _bind(self, parser: httptools.HttpResponseParser) -> None:
        # Bound once: a method looked up by name on every response costs more than the call.
        self._parser = parser
        self._feed: Callable[[bytes], None] = parser.feed_data
        self._status: Callable[[], int] = parser.get_status_code
        self._keep_alive: Callable[[], bool] = parser.should_keep_alive

    # -- the asyncio protocol (by its methods: mypyc compiles no subclass of asyncio.Protocol) -

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._is_closing = self.transport.is_closing
        self._write = self.transport.write

    def data_received(self, data: bytes) -> None:
        ex = self.ex
        if ex is None:
            self.close()  # a backend must not speak when not asked
            return
        if ex.tunnel:
            ex.tunnel_out(data)
            return
        ex.read_begins()
        try:
            self._feed(data)
        except httptools.HttpParserUpgrade as exc:
            if self.ex is not None:
                self.ex.upstream_upgraded(data[exc.args[0]:])
        except httptools.HttpParserError:
            if self.stale:
                self.stray = True
            elif self.ex is not None:
                self.ex.upstream_failed()
            self.close()
        finally:
            ex.read_ends()
        if self.stale:
            self._after_stale()

    def eof_received(self) -> bool | None:
        ex = self.ex
        if ex is not None and self.until_eof and ex.response_started and not ex.tunnel:
            ex.response_complete(False)  # its end is the end of the stream (llhttp can't say)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        ex, self.ex = self.ex, None
        if ex is not None:
            ex.upstream_lost(self)
        self._bind(_SPENT)  # the parser holds this connection: free both now, not at a GC pass

    def pause_writing(self) -> None:
        if self.ex is not None:
            self.ex.backend_full()

    def resume_writing(self) -> None:
        if self.ex is not None:
            self.ex.backend_drained()

    # -- llhttp callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        known = _KNOWN.find(name)
        if known is not None:
            lname = cast(bytes, known)
            if lname == b"content-length":
                self.has_length = True
            elif lname == b"date":
                self.has_date = True
            elif lname == _ACCEL:
                self.accel_buffering = value.strip().lower()
                return
            elif lname in HOP_BY_HOP:
                if lname == b"transfer-encoding":
                    self.chunked = True
                    return
                if lname == b"keep-alive" or (lname == b"connection" and (
                        value == b"keep-alive" or value.lower() in (b"keep-alive", b"close"))):
                    return  # about this connection only: dropped here, llhttp has noted it
                self.hop = True  # Connection naming headers, Upgrade...: filtered later
        headers = self.headers
        headers.append(name)
        headers.append(b": ")
        headers.append(value)
        headers.append(b"\r\n")

    def on_headers_complete(self) -> None:
        if self.stale:
            self.stray = True
            return
        ex = self.ex
        status = self._status()
        headers = self.headers
        self.headers = [b""]
        if ex is None:
            return
        if 100 <= status < 200 and status != 101:
            self.has_length = self.chunked = self.hop = self.has_date = False
            self.accel_buffering = b""
            return  # interim responses end here; the real one follows
        self.until_eof = not self.has_length and not self.chunked
        ex.response_head(status, headers, self._keep_alive(),
                         self.has_length, self.chunked, self.hop)
        self.has_length = self.chunked = self.hop = self.has_date = False
        self.accel_buffering = b""

    def on_body(self, body: bytes) -> None:
        if self.stale:
            self.stray = True
        elif self.ex is not None:
            self.ex.response_body(body)

    def on_message_complete(self) -> None:
        ex = self.ex
        if not self.stale and ex is not None and ex.response_started and not ex.tunnel:
            ex.response_complete(self._keep_alive())
