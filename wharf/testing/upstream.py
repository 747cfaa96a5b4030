"""A scripted HTTP/1.1 backend that records what reaches it, run in a thread of the test.

Paths choose the behaviour: `/echo...` answers with a JSON copy of the request; `/garbage`
answers with something that is not HTTP; `/hangup` closes without answering; `/chunked`
answers in chunks; `/big/N` sends N bytes; `/slow/S` waits S seconds first; `/healthz` answers
200 or 503 as `healthy` says; `/status/N` answers status N; `/close` answers and closes; `/ws`
switches protocols and echoes bytes back; a path with `/dated` has a `Date: DATE` header (no
other answer has one); anything else gets "ok". `delay` slows every answer and `broken` turns
every answer into a 500. Every complete request that reaches it is recorded
in `requests`, and the target of every request head, complete or not, in `heads`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any, cast

import httptools

DATE = "Sun, 06 Nov 1994 08:49:37 GMT"


@dataclass
class Seen:
    """One request as the backend received it."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""  # kept when under 1 MiB; body_size counts every byte
    connection: int = 0
    body_size: int = 0

    def header(self, name: str) -> str | None:
        """The first value of a header, by case-insensitive name."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)

    def header_values(self, name: str) -> list[str]:
        """All values of a header."""
        return [v for n, v in self.headers if n.lower() == name.lower()]


@dataclass
class ScriptedUpstream:
    """Starts on a free port of 127.0.0.1 (or on the Unix socket `path`) in a background
    thread; `close()` stops it."""

    name: str = "upstream"
    idle_close: float | None = None  # close idle keep-alive connections after this many seconds
    delay: float = 0.0  # wait this long before every answer
    healthy: bool = True  # /healthz answers 200, else 503
    broken: bool = False  # answer 500 to everything but /healthz
    requests: list[Seen] = field(default_factory=list)
    heads: list[str] = field(default_factory=list)  # targets of every head, even if cut short
    connections: int = 0
    port: int = 0
    path: str | None = None  # serve on a Unix socket there instead (port stays 0)

    @property
    def address(self) -> str:
        """Where it serves, as a route's `servers` names it."""
        return f"unix:{self.path}" if self.path is not None else f"127.0.0.1:{self.port}"

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        if self.path is not None:
            server = self._loop.run_until_complete(self._loop.create_unix_server(
                lambda: _Conn(self), self.path))
        else:
            server = self._loop.run_until_complete(self._loop.create_server(
                lambda: _Conn(self), "127.0.0.1", 0))
            self.port = server.sockets[0].getsockname()[1]
        self._server = server
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._loop.run_until_complete(server.wait_closed())
        self._loop.close()

    def close(self) -> None:
        """Stop serving and join the thread (again: nothing)."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class _Conn(asyncio.Protocol):
    def __init__(self, owner: ScriptedUpstream) -> None:
        self.owner = owner
        owner.connections += 1
        self.number = owner.connections
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.tunnel = False
        self.idle: asyncio.TimerHandle | None = None
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.idle is not None:
            self.idle.cancel()
        if self.tunnel:
            assert self.transport is not None
            self.transport.write(b"echo:" + data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.owner.heads.append(self.url.decode("latin-1"))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        seen = Seen(self.parser.get_method().decode(), self.url.decode("latin-1"),
                    self.parser.get_http_version(),
                    [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self.headers],
                    bytes(self.body) if len(self.body) < 1 << 20 else b"", self.number)
        seen.body_size = len(self.body)
        self.owner.requests.append(seen)
        keep_alive = self.parser.should_keep_alive()
        self._reset()
        path = seen.target.split("?")[0]
        if self.owner.delay and not path.startswith("/healthz"):
            asyncio.get_running_loop().call_later(
                self.owner.delay, self._answer, seen, path, keep_alive)
        elif path.startswith("/slow/"):
            asyncio.get_running_loop().call_later(
                float(path.split("/")[2]), self._answer, seen, path, keep_alive)
        else:
            self._answer(seen, path, keep_alive)

    def _answer(self, seen: Seen, path: str, keep_alive: bool) -> None:
        t: Any = self.transport
        if t is None or t.is_closing():
            return
        if seen.method == "HEAD" and not path.startswith("/head-with-body"):
            t = _HeadOnly(t)  # the same head, no body (/head-with-body misbehaves on purpose)
        if path.startswith("/healthz") or (self.owner.broken and not path.startswith("/ws")):
            ok = path.startswith("/healthz") and self.owner.healthy
            code, body = (200, b"healthy") if ok else (503 if path.startswith("/healthz")
                                                       else 500, b"unwell")
            t.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nX-Backend: %s\r\n\r\n%s"
                    % (code, len(body), self.owner.name.encode(), body))
            if not keep_alive:
                t.close()
            return
        if path.startswith("/garbage"):
            t.write(b"THIS IS NOT HTTP\r\n\r\n")
            return
        if path.startswith("/hangup"):
            t.close()
            return
        if path.startswith("/until-close"):  # no length, no chunks: the body ends at EOF
            t.write(b"HTTP/1.1 200 OK\r\nX-Backend: %s\r\n\r\nall of it, then EOF"
                    % self.owner.name.encode())
            t.close()
            return
        if path.startswith("/ws"):
            self.tunnel = True
            t.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\n\r\n")
            return
        if path.startswith("/chunked"):
            t.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                    b"X-Backend: %s\r\n\r\n" % self.owner.name.encode())
            for part in (b"hello ", b"chunked ", b"world"):
                t.write(b"%x\r\n%s\r\n" % (len(part), part))
            t.write(b"0\r\n\r\n")
        elif path.startswith("/big/"):
            size = int(path.split("/")[2])
            t.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            block = b"x" * 65536
            for _ in range(size // len(block)):
                t.write(block)
            t.write(b"x" * (size % len(block)))
        elif path.startswith("/status/"):
            code = int(path.split("/")[2])
            t.write(b"HTTP/1.1 %d Whatever\r\nContent-Length: 6\r\n\r\nstatus" % code)
        else:
            if "/echo" in path:
                body = json.dumps(_as_dict(seen)).encode()
            else:
                body = b"ok from " + self.owner.name.encode()
            extra = b"Connection: close\r\n" if path.startswith("/close") else \
                b"Keep-Alive: timeout=5\r\nX-Hop: drop-me\r\nConnection: X-Hop\r\n"
            if "/dated" in path:
                extra += b"Date: " + DATE.encode() + b"\r\n"
            t.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"X-Backend: %s\r\n%sContent-Length: %d\r\n\r\n%s"
                    % (self.owner.name.encode(), extra, len(body), body))
            if path.startswith("/close"):
                t.close()
                return
        if not keep_alive:
            t.close()
        elif self.owner.idle_close is not None:
            self.idle = asyncio.get_running_loop().call_later(self.owner.idle_close, t.close)


class _HeadOnly:
    """A transport that lets through the first response head written to it, and no more."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._done = False
        self.close = transport.close
        self.is_closing = transport.is_closing

    def write(self, data: bytes) -> None:
        if not self._done:
            end = data.find(b"\r\n\r\n")
            self._done = end >= 0
            self._transport.write(data if end < 0 else data[:end + 4])


def _as_dict(seen: Seen) -> dict[str, Any]:
    return {"method": seen.method, "target": seen.target, "version": seen.version,
            "headers": seen.headers, "body": seen.body.decode("latin-1"),
            "connection": seen.connection}
