"""TLS on a client connection, driven by the connection itself (compiled with mypyc).

Theory of operation. A TLS listener accepts plain TCP; each connection is a `TlsConnection`,
the HTTP/1 `ClientConnection` with an OpenSSL connection between it and the socket: two
memory BIOs and the `SSL *` of the listener context (`SSLContext._wrap_bio`, the C object
that `ssl.SSLObject` wraps in Python, without that wrapper's calls).

- Bytes from the socket go into the incoming BIO. Until the handshake is done they drive
  `do_handshake` (each flight of the server is written out as it is made); once it is, the
  listener facts get the ALPN it chose, the connection starts as a plain one would (peer,
  header deadline), and plaintext is read record by record and fed to the HTTP/1 reader. The
  loop stops when the BIO is empty (no SSLWantReadError per read).
- What the connection sends is encrypted and written at once, one `transport.write` per
  call: a batch (`open_batch` ... `flush`: a response head and the body read with it) is one
  TLS write and one send(2). Closing sends close_notify with the last batch, without waiting
  for the peer's (as nginx does); `abort` sends nothing. What OpenSSL writes on its own
  after the handshake (TLS 1.3's session tickets; TLS 1.2's Finished) waits for the answer
  when the request came with the client's Finished (TLS 1.3; 1.2 with False Start): one
  send(2) and one wake-up of the client fewer per connection. A client that sent only its
  Finished may be waiting for ours, and gets it at once. Likewise OpenSSL's reply to a
  KeyUpdate leaves with the next write, as it does on a socket.
- The handshake steps and the close_notify are direct calls on the `SSL *` (`openssl.DIRECT`)
  where they can be made: through the `ssl` module, each handshake would raise and catch
  SSLWantReadError twice (once while it waits for the client's Finished, once in
  `shutdown()`, which waits for the peer's close_notify). Reads and writes go through it.
- The SNI callback, the ClientHello callback (TLS-ALPN-01) and the session-ticket keys are
  the listener context's (see `tls`): they run inside `do_handshake` as they would in
  uvloop's transport. A handshake that fails writes OpenSSL's alert, then closes; one not
  done within HANDSHAKE_TIMEOUT is dropped by the worker's sweep. A connection whose first
  bytes are a plain HTTP request line (not a TLS record) gets nginx's answer, a plain 400
  that says so, and is closed: a user who typed http:// to the HTTPS port sees why.
- Back-pressure is the TCP transport's: `pause_reading` stops the bytes, and the transport's
  high-water mark (on ciphertext, about the plaintext's size) pauses writing.

The socket carries ciphertext, so `raw_socket` stays None (no sendfile): `Listener.tls`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

from wharf.proxy import openssl
from wharf.proxy.downstream import Listener
from wharf.proxy.server import ClientConnection, _nowhere

if TYPE_CHECKING:
    from wharf.proxy.plane import DataPlane

# A TLS handshake not done by then is dropped (nginx counts it in client_header_timeout, 60 s;
# a handshake takes round trips, not seconds, and a held one costs a connection slot).
HANDSHAKE_TIMEOUT: Final = 10.0
HANDSHAKE: Final = "handshake"  # the deadline kind while it lasts
# The most plaintext one TLS record holds (RFC 8446 5.1): one read returns one record.
RECORD_SIZE: Final = 16384
TLS_HANDSHAKE_RECORD: Final = 0x16  # the first byte of every ClientHello
_PLAIN_BODY: Final = b"The plain HTTP request was sent to the HTTPS port.\n"
PLAIN_HTTP_ANSWER: Final = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(_PLAIN_BODY), _PLAIN_BODY))


class TlsConnection(ClientConnection):
    """A client connection on a TLS listener: TLS over the TCP transport, then HTTP/1."""

    __slots__ = ("_bio_in", "_bio_out", "_context", "_first", "_incoming", "_outgoing",
                 "_ssl", "_tcp", "_tls", "_tls_read", "_tls_write")

    def __init__(self, plane: DataPlane, listener: Listener, context: ssl.SSLContext) -> None:
        super().__init__(plane, listener)
        self._context = context
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls: Any = None  # an _ssl._SSLSocket: typeshed knows only ssl.SSLObject
        self._ssl = 0  # its `SSL *`, for openssl.DIRECT's calls (0: through `ssl` alone)
        # The methods called for every record, bound once: a method of an extension type
        # called by name is looked up on each call. (Bound to the BIOs and the SSL object,
        # not to this connection: no cycle.)
        self._bio_in: Callable[[bytes], int] = self._incoming.write
        self._bio_out: Callable[[], bytes] = self._outgoing.read
        self._tls_read: Callable[[int], bytes] = _unread
        self._tls_write: Callable[[bytes], int] = _unwritten
        self._tcp: asyncio.Transport | None = None
        self._first = True  # no byte received yet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # `self.transport` stays None until the handshake is done (then see _handshake).
        self._tcp = cast(asyncio.Transport, transport)
        self._tls = cast(Any, self._context)._wrap_bio(
            self._incoming, self._outgoing, server_side=True, server_hostname=None)
        self._tls_read = self._tls.read
        self._tls_write = self._tls.write
        if _DIRECT is not None:
            self._ssl = _DIRECT.pointer_at(id(self._tls) + _SSL_OFFSET).value or 0
        self.plane.connections.add(self)  # for the sweep's handshake deadline, and drains
        self.set_deadline(HANDSHAKE_TIMEOUT, HANDSHAKE)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._first and data:
            self._first = False
            if data[0] != TLS_HANDSHAKE_RECORD and _plain_request(data):
                if self._tcp is not None:
                    self._tcp.write(PLAIN_HTTP_ANSWER)
                self._drop()
                return
        self._bio_in(data)
        if self.transport is None and not self._handshake():
            return
        self._decrypt()

    def _handshake(self) -> bool:
        """Go on with the handshake; True once it is done."""
        if self._ssl and _DIRECT is not None:
            done = _DIRECT.do_handshake(self._ssl)
            if done != 1:
                wants_more = _DIRECT.get_error(self._ssl, done) == _DIRECT.WANT_READ
                if not wants_more:
                    _DIRECT.clear_errors()  # what `ssl` would have raised, not left for it
                return self._not_done(wants_more)
        else:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return self._not_done(True)
            except (ssl.SSLError, OSError):  # refused (an alert was made), a bad ClientHello
                return self._not_done(False)
        if not self._incoming.pending:  # else it leaves with the answer (see the top)
            self._send_out()
        self.listener = self.listener.over_tls(self._tls.selected_alpn_protocol())
        tcp = self._tcp
        assert tcp is not None
        super().connection_made(tcp)  # as a plain connection: peer, header deadline
        self._write = self._encrypt
        return True

    def _not_done(self, wants_more: bool) -> bool:
        """After a handshake step that did not finish it: send what it made (the next
        flight, or an alert), and close unless it waits for more from the peer."""
        self._send_out()
        if not wants_more:
            self._drop()
        return False

    def _decrypt(self) -> None:
        """Feed the reader the plaintext of every whole record received."""
        # Each read asks for at least the record's plaintext (no more than its ciphertext,
        # and never more than RECORD_SIZE), so OpenSSL keeps nothing back: its `pending()`
        # is 0 whenever the BIO is empty, and need not be asked.
        incoming, read = self._incoming, self._tls_read
        while not self.closed:
            pending = incoming.pending
            if not pending:
                break
            try:
                data = read(min(pending, RECORD_SIZE))
            except ssl.SSLWantReadError:
                break  # a record not whole yet, or a handshake message (a KeyUpdate)
            except (ssl.SSLError, OSError):
                self.abort()  # a record that does not decrypt: nothing more can be read
                return
            if not data:  # close_notify
                if not self.eof_received():
                    self.close()
                break
            super().data_received(data)

    def _encrypt(self, data: bytes) -> None:
        """The connection's writer once the handshake is done."""
        self._tls_write(data)
        self._send_out()

    def _send_out(self) -> None:
        out = self._bio_out()
        if out and self._tcp is not None:
            self._tcp.write(out)

    def _drop(self) -> None:
        """Close a connection whose handshake did not complete."""
        self.closed = True
        if self._tcp is not None:
            self._tcp.close()

    def close(self) -> None:
        """Close after what was written has been sent, with close_notify after it."""
        if self.transport is None:
            if not self.closed:
                self._drop()
            return
        if not self.closed:
            batch = self._take_batch()
            if batch:
                self._tls.write(batch)
            direct = _DIRECT
            if self._ssl and direct is not None:  # close_notify, not waiting for the peer's
                direct.set_shutdown(self._ssl, direct.RECEIVED_SHUTDOWN)
                if direct.shutdown(self._ssl) < 0:
                    direct.clear_errors()
            else:
                try:
                    self._tls.shutdown()  # writes close_notify, then wants the peer's
                except (ssl.SSLError, OSError):
                    pass
            self._send_out()  # the last data and close_notify in one write
        super().close()

    def abort(self) -> None:
        """Cut the connection now."""
        if self.transport is None:
            self._batching = False
            self._batch.clear()
            self.closed = True
            if self._tcp is not None:
                self._tcp.abort()
            return
        super().abort()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # `_write` is a method of this connection: a cycle that would keep it, its parser and
        # its exchanges until a GC pass. The SSL * and its buffers go now too.
        self._write = _nowhere
        self._tls = None
        self._ssl = 0
        self._tls_read, self._tls_write = _unread, _unwritten


# The direct calls, or None to go through the `ssl` module alone (where they cannot be made;
# tests take both ways).
_DIRECT = openssl.DIRECT
_SSL_OFFSET: Final = openssl.SSL_OFFSET


def _unread(size: int) -> bytes:
    """The record reader of a connection without its SSL object."""
    return b""


def _unwritten(data: bytes) -> int:
    """The record writer of a connection without its SSL object."""
    raise ConnectionError("no TLS connection")


def _plain_request(data: bytes) -> bool:
    """True if `data` starts like an HTTP/1 request line: a method of capitals, a space."""
    space = data.find(b" ", 0, 16)
    return space > 0 and data[:space].isalpha() and data[:space].isupper()
