"""Reading HTTP/1 requests from a client: llhttp's callbacks, turned into Exchanges.

The request head is checked as it is parsed: more than one Host, a Transfer-Encoding other
than chunked, Transfer-Encoding in HTTP/1.0, HTTP/0.9 or 2.0, or a head larger than
`max_header_size` (431) refuse the request before anything is forwarded; headers with an
underscore are dropped (as nginx). A request asking to switch protocols is routed at once
(llhttp must know whether to parse on): if its route does not allow the switch, llhttp's stop
is undone and the rest is parsed on as HTTP (the body through a framing head fed in its place).

What is done with a parsed request (answer it now, or queue it behind the one answered) is
the connection's business: `server.ClientConnection` extends this class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast

import httptools

from wharf.proxy import http1
from wharf.proxy.downstream import Peer
from wharf.proxy.exchange import Exchange
from wharf.proxy.routing import upgrade_allowed

if TYPE_CHECKING:
    from wharf.proxy.plane import DataPlane
    from wharf.proxy.request import Request

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
# An int: `b"_" in name` first tries the needle as an index, and CPython raises and clears a
# TypeError (a formatted message) before it searches: about 0.2 us per header.
_UNDERSCORE: Final = ord("_")
_KNOWN: Final = http1.KnownHeaders(_SPECIAL)


# _upgrade_refused: none, or the request that was refused has no body, or has one.
_NO_REFUSAL: Final = 0
_REFUSED: Final = 1
_REFUSED_WITH_BODY: Final = 2
# _replay: no, or its end of message is llhttp's skip of the body, or its framing head is fed.
_NO_REPLAY: Final = 0
_SKIPPED_END: Final = 1
_FRAMING_HEAD: Final = 2

def _note_header(ex: Request, kind: int, value: bytes) -> None:
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


class _Gone:
    """The protocol of the parser a closed connection keeps (it has nothing to parse)."""


_SPENT: Final = httptools.HttpRequestParser(_Gone())


class RequestReader:
    """The parsing half of a client connection (see `server.ClientConnection`)."""

    __slots__ = (
        "_feed",
        "_get_method",
        "_get_version",
        "_head_size",
        "_in_head",
        "_keep_alive",
        "_reject",
        "_replay",
        "_upgrade_refused",
        "active",
        "closed",
        "deadline",
        "deadline_kind",
        "ex",
        "parser",
        "peer",
        "plane",
    )

    def __init__(self, plane: DataPlane, peer: Peer) -> None:
        self.plane = plane
        self.peer = peer
        self._new_parser()
        self.ex: Exchange | None = None  # the request being parsed
        self.active: Exchange | None = None  # the request being answered
        self._in_head = False
        self._head_size = 0
        self.deadline = 0.0
        self.deadline_kind = ""
        self.closed = False
        self._reject = 0  # the status of a request refused inside a parser callback
        # A refused Upgrade makes llhttp skip the body and stop, as if the protocol switched:
        # the rest is parsed on as HTTP, the body through a framing head fed in its place.
        self._upgrade_refused = _NO_REFUSAL
        self._replay = _NO_REPLAY

    def set_deadline(self, seconds: float, kind: str) -> None:
        """Arm the one deadline this connection has (checked by the worker's sweep)."""
        self.deadline = self.plane.now + seconds
        self.deadline_kind = kind

    # -- what the connection does with requests -----------------------------------------------

    def _new_exchange(self) -> Exchange:
        raise NotImplementedError

    def _request_ready(self, ex: Exchange) -> None:
        """The head of `ex` is parsed: answer it, or queue it."""
        raise NotImplementedError

    def _bad_request(self, status: int) -> None:
        """Refuse what is being parsed with `status`."""
        raise NotImplementedError

    def _hold_for_tunnel(self, data: bytes) -> None:
        """Keep bytes that followed a request asking to switch protocols."""
        raise NotImplementedError

    # -- feeding llhttp ------------------------------------------------------------------------

    def _parse(self, data: bytes) -> None:
        """Feed bytes read from the client to llhttp."""
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
        self._bind(httptools.HttpRequestParser(self))

    def _bind(self, parser: httptools.HttpRequestParser) -> None:
        # Bound once: a method looked up by name on every request costs more than the call.
        self.parser = parser
        self._feed: Callable[[bytes], None] = parser.feed_data
        self._get_method: Callable[[], bytes] = parser.get_method
        self._get_version: Callable[[], str] = parser.get_http_version
        self._keep_alive: Callable[[], bool] = parser.should_keep_alive

    def _let_go_of_parser(self) -> None:
        """At connection_lost: the parser holds this reader as its protocol; breaking that
        cycle frees the connection and its transport (on TLS, its SSL object)
        now, not at the next GC pass, which would have to walk every connection closed since."""
        self._bind(_SPENT)

    def on_url(self, url: bytes) -> None:
        ex = self.ex
        if self._replay == _FRAMING_HEAD:
            return
        if ex is None:
            self.ex = ex = self._new_exchange()
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
        if _UNDERSCORE in name and not self.plane.underscores_in_headers:
            return  # as nginx: X_Forwarded_For would reach a WSGI app as X-Forwarded-For
        ex.headers.append((name, value))
        kind = _KNOWN.find(name)
        if kind is not None:
            _note_header(ex, cast(int, kind), value)

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
        self._request_ready(ex)

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        if ex is not None and not ex.done:
            ex.request_body(body, ex is self.active)

    def on_message_complete(self) -> None:
        if self._replay == _SKIPPED_END:  # not the end: the body was skipped, read it now
            self._replay = _NO_REPLAY
            return
        ex, self.ex = self.ex, None
        if ex is not None and not ex.request_complete:
            ex.request_end()
        if self.active is None and not self.closed:  # answered already (404, static...)
            self.set_deadline(self.plane.idle_timeout, "idle")

