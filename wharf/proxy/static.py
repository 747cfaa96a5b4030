"""Static files: sendfile(2), types, validators, conditional and range requests, precompressed.

No path escapes the root: `.`/`..` segments (raw or percent-encoded) and NUL are refused
before any file-system call, and the resolved real path (symlinks followed) must lie inside
the root, else 404. A path that is not UTF-8 once percent-decoded is a 400. Serving never
raises: an unexpected error is a 500 (or a cut connection, if the answer had started) and one
line in the error log, and the connection goes on as after any answer.

What to answer (type, precompressed sibling, range, 412/304) is decided in `negotiation`.

uvloop implements no `loop.sendfile`, so the body goes out with os.sendfile on a duplicate of
the socket's descriptor, waiting for writability with add_writer on that duplicate; when the
transport still holds unsent bytes (a pipelined response before), or is TLS (the socket
carries ciphertext), the file is read and written through the transport instead, with
back-pressure. The client side is reached through `downstream.Downstream` only.
"""

from __future__ import annotations

import logging
import os
import stat
from email.utils import formatdate
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from wharf.proxy import http1
from wharf.proxy.date import HTTP_DATE
from wharf.proxy.downstream import SEND, Downstream
from wharf.proxy.negotiation import (
    content_type,
    not_modified,
    parse_range,
    precondition_failed,
    preferred_encoding,
)
from wharf.proxy.routing import strip
from wharf.registry.snapshot import Route

if TYPE_CHECKING:
    from wharf.proxy.request import Request

log = logging.getLogger("wharf.proxy")

CHUNK = 256 * 1024
_ENCODINGS = ((b"br", ".br"), (b"gzip", ".gz"))  # in the order we prefer them


class StaticServer:
    """Serves files for static routes."""

    def __init__(self) -> None:
        self._senders: dict[Downstream, _Sender] = {}

    def __repr__(self) -> str:
        return f"<StaticServer sending={len(self._senders)}>"

    def serve(self, ex: Request, route: Route) -> None:
        """Answer `ex` from the route's directory. Never raises: an unexpected error is a 500
        (or a cut, once the answer has started) and one line in the error log."""
        try:
            self._serve(ex, route)
        except Exception as exc:
            self.failed(ex, exc)

    def failed(self, ex: Request, exc: Exception) -> None:
        """Something unforeseen went wrong serving `ex`: log one line, end its answer."""
        log.error("wharf-proxy: static file %r failed: %s: %s",  # %r: escaped, one line
                  ex.target[:256], type(exc).__name__, exc)
        sender = self._senders.get(ex.down)
        if sender is not None and sender.ex is ex:
            sender.end(failed=True)
        elif not ex.done:
            ex.fail(500)

    def _serve(self, ex: Request, route: Route) -> None:
        assert route.static is not None
        if ex.method not in (b"GET", b"HEAD"):
            return ex.fail(405, ((b"Allow", b"GET, HEAD"),))
        try:
            raw = unquote_to_bytes(strip(route.path, ex.path).encode("latin-1"))
            rel = raw.decode("utf-8")  # file names are UTF-8, as browsers encode them
        except UnicodeError:  # well framed, only not a file name: the connection goes on
            return ex.respond(http1.simple_response(400, close=not ex.keep_alive,
                                                    head_only=ex.head_only), 400)
        if "\x00" in rel or http1.has_dot_segment(rel):
            return ex.fail(400)
        root = route.static
        path = self._inside(root, os.path.join(root, rel.lstrip("/")))
        st = _stat(path) if path else None
        if path and st and stat.S_ISDIR(st.st_mode):
            if not ex.path.endswith("/"):
                location = ex.path + "/" + ("?" + ex.query if ex.query else "")
                return ex.respond(http1.simple_response(
                    301, headers=((b"Location", location.encode("latin-1")),),
                    close=not ex.keep_alive, head_only=ex.head_only), 301)
            path = self._inside(root, os.path.join(path, "index.html"))
            st = _stat(path) if path else None
        elif rel.endswith("/"):
            return ex.fail(404)  # a file is not a directory (nginx: 404)
        if path is None or st is None or not stat.S_ISREG(st.st_mode):
            return ex.fail(404)
        self._send_file(ex, root, path, st)

    @staticmethod
    def _inside(root: str, path: str) -> str | None:
        real = os.path.realpath(path)
        return real if real == root or real.startswith(root + os.sep) else None

    def _send_file(self, ex: Request, root: str, path: str, st: os.stat_result) -> None:
        headers = {name.lower(): value.decode("latin-1") for name, value in ex.headers}
        encoding, served, sst = b"", path, st
        siblings: dict[str, tuple[str, os.stat_result]] = {}
        for token, suffix in _ENCODINGS:
            candidate = self._inside(root, path + suffix)
            cst = _stat(candidate) if candidate else None
            if candidate and cst is not None and stat.S_ISREG(cst.st_mode):
                siblings[token.decode()] = (candidate, cst)
        variants = bool(siblings)
        chosen = preferred_encoding(headers.get(b"accept-encoding", ""), tuple(siblings))
        if chosen:
            encoding = chosen.encode()
            served, sst = siblings[chosen]
        etag = f'"{sst.st_mtime_ns:x}-{sst.st_size:x}{"-" + encoding.decode() if encoding else ""}"'
        out = [(b"Content-Type", content_type(path)), (b"ETag", etag.encode()),
               (b"Last-Modified", formatdate(sst.st_mtime, usegmt=True).encode()),
               (b"Accept-Ranges", b"bytes")]
        if encoding:
            out.append((b"Content-Encoding", encoding))
        if variants:
            out.append((b"Vary", b"Accept-Encoding"))
        if precondition_failed(headers, etag, sst.st_mtime):
            return ex.fail(412)
        if not_modified(headers, etag, sst.st_mtime):
            self._head(ex, 304, out, None, body=False)
            return
        size, first, last, status = sst.st_size, 0, sst.st_size - 1, 200
        wanted = headers.get(b"range")
        if wanted and headers.get(b"if-range", etag) == etag:
            span = parse_range(wanted, size)
            if span is False:
                out.append((b"Content-Range", f"bytes */{size}".encode()))
                self._head(ex, 416, out, 0, body=False)
                return
            if span:
                assert isinstance(span, tuple)
                first, last = span
                status = 206
                out.append((b"Content-Range", f"bytes {first}-{last}/{size}".encode()))
        length = last - first + 1 if size else 0
        head = self._head(ex, status, out, length, body=True)
        if ex.head_only or length == 0:
            ex.down.send_head(head)
            ex.response_bytes = 0
            return ex.finish()
        try:
            fd = os.open(served, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return ex.fail(404)
        sender = _Sender(self, ex, fd, first, length, head)
        self._senders[ex.down] = sender
        sender.start()

    def _head(self, ex: Request, status: int, headers: list[tuple[bytes, bytes]],
              length: int | None, body: bool) -> bytes:
        ex.status = status
        ex.response_started = True
        lines = [http1.status_line(status), HTTP_DATE.line]
        lines += [n + b": " + v + b"\r\n" for n, v in headers]
        if ex.peer.listener.tls and ex.plane.https.hsts_line:
            lines.append(ex.plane.https.hsts_line)
        if length is not None:
            lines.append(b"Content-Length: %d\r\n" % length)
        if not ex.keep_alive or not ex.request_complete:
            ex.close_client = True
            lines.append(b"Connection: close\r\n")
        elif ex.version == "1.0":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        head = b"".join(lines)
        if not body:
            ex.down.send_head(head)
            ex.finish()
        return head

    def resume(self, down: Downstream) -> None:
        """The client's transport drained: continue a buffered file transfer."""
        sender = self._senders.get(down)
        if sender is not None and not sender.raw:
            try:
                sender.pump()
            except Exception as exc:
                self.failed(sender.ex, exc)

    def done(self, sender: _Sender) -> None:
        """A transfer ended."""
        self._senders.pop(sender.ex.down, None)

    def abandon(self, down: Downstream) -> None:
        """The client went away: end its transfer, if any, and let go of the file."""
        sender = self._senders.get(down)
        if sender is not None:
            sender.end(failed=True)


class _Sender:
    """Sends one file range to one client."""

    def __init__(self, server: StaticServer, ex: Request, fd: int, offset: int, count: int,
                 head: bytes) -> None:
        self.server = server
        self.ex = ex
        self.fd = fd
        self.offset = offset
        self.remaining = count
        self.head = head
        self.raw = False
        self.sock = -1

    def start(self) -> None:
        sock = self.ex.down.raw_socket()
        if sock is not None:
            self.raw = True
            self.sock = os.dup(sock.fileno())
            self.step()
        else:
            self.ex.down.send_head(self.head)
            self.pump()

    def step(self) -> None:
        """Raw path: write the head, then sendfile until done or the socket is full."""
        try:
            while self.head:
                sent = os.write(self.sock, self.head)
                self.head = self.head[sent:]
            while self.remaining > 0:
                sent = os.sendfile(self.sock, self.fd, self.offset, self.remaining)
                if sent == 0:
                    break  # the file shrank under us
                self.offset += sent
                self.remaining -= sent
                self.ex.response_bytes += sent
        except BlockingIOError:
            self._stalled()
            self.ex.plane.loop.add_writer(self.sock, self._writable)
            return
        except OSError:
            self.end(failed=True)
            return
        self.end(failed=self.remaining > 0)

    def _stalled(self) -> None:
        """The client is not reading: it has `idle` seconds to take more (nginx's
        send_timeout), else the connection is closed and the file let go."""
        ex = self.ex
        ex.down.set_deadline(ex.plane.idle_timeout, SEND)

    def _writable(self) -> None:
        try:
            self.ex.plane.loop.remove_writer(self.sock)
            if self.ex.down.closed:
                self.end(failed=True)
            else:
                self.step()
        except Exception as exc:
            self.server.failed(self.ex, exc)

    def pump(self) -> None:
        """Buffered path: read and write through the transport until it asks us to wait."""
        down = self.ex.down
        while self.remaining > 0 and not down.writing_paused and not down.closed:
            try:
                data = os.pread(self.fd, min(CHUNK, self.remaining), self.offset)
            except OSError:
                data = b""  # unreadable now (EIO): the answer is cut below
            if not data:
                break
            self.offset += len(data)
            self.remaining -= len(data)
            self.ex.response_bytes += len(data)
            down.send(data)
        if self.remaining <= 0 or down.closed:
            self.end(failed=self.remaining > 0)
        else:
            self._stalled()

    def end(self, failed: bool) -> None:
        """Let go of the file (and of the socket's duplicate); finish or cut the response."""
        if self.fd < 0:
            return
        os.close(self.fd)
        self.fd = -1
        if self.sock >= 0:
            self.ex.plane.loop.remove_writer(self.sock)
            os.close(self.sock)
            self.sock = -1
        self.server.done(self)
        if failed:
            self.ex.cut()
        else:
            self.ex.finish()


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None
