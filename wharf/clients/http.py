"""A small HTTP/1.1 client for the APIs Wharf reads: the Docker engine's (on a Unix socket)
and etcd's JSON gateway.

Why not a library: httpx costs the daemon +5.6 MiB and aiohttp +14 MiB, for a few JSON calls a
second to a local socket; httptools (llhttp), already the proxy's parser, does the parsing
here, and this module only writes a request and feeds the answer to it. One connection per
request (`Connection: close`): these calls are rare, and a closed connection can never hand an
answer to the wrong caller. `stream` keeps the connection open and yields the body's lines as
they come (Docker's `/events`, etcd's `/v3/watch`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httptools

CONNECT_TIMEOUT = 3.0
MAX_BODY = 64 * 1024 * 1024  # an answer bigger than this is not one we asked for
MAX_LINE = 16 * 1024 * 1024


class HttpError(Exception):
    """The server could not be reached, or its answer is not HTTP."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a server listens: a host and port, or a Unix socket."""

    host: str = ""
    port: int = 0
    unix: str | None = None

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """`http://host:port` or `unix:///path/to.sock`; ValueError if neither."""
        parts = urlsplit(url)
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError(f"{url!r}: a unix:// endpoint needs a path")
            return cls(unix=parts.path)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{url!r}: expected http://HOST:PORT or unix:///PATH")
        return cls(parts.hostname, parts.port or 80)

    def __str__(self) -> str:
        return f"unix://{self.unix}" if self.unix else f"http://{self.host}:{self.port}"

    @property
    def authority(self) -> str:
        return "localhost" if self.unix else f"{self.host}:{self.port}"


@dataclass(slots=True)
class Response:
    """An answer; `body` is whole for `request`, empty for `stream`."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        """The body as JSON; HttpError if it is not."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(f"an answer that is not JSON: {self.body[:80]!r}") from exc


class _Parser:
    """httptools callbacks: the head into `response`, body bytes into `chunks`."""

    def __init__(self) -> None:
        self.response = Response()
        self.chunks: list[bytes] = []
        self.size = 0
        self.head_done = False
        self.done = False
        self._field = b""
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.response.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.response.status = self.parser.get_status_code()
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > MAX_BODY:
            raise HttpError(f"an answer of over {MAX_BODY} bytes")
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise HttpError(f"an answer that is not HTTP/1.1: {exc}") from exc

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _encode(method: str, path: str, endpoint: Endpoint, body: bytes | None,
            headers: dict[str, str] | None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {endpoint.authority}", "Connection: close",
             "User-Agent: wharf"]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def _connect(endpoint: Endpoint, timeout: float
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        if endpoint.unix is not None:
            opening = asyncio.open_unix_connection(endpoint.unix, limit=MAX_LINE)
        else:
            opening = asyncio.open_connection(endpoint.host, endpoint.port, limit=MAX_LINE)
        return await asyncio.wait_for(opening, min(timeout, CONNECT_TIMEOUT))
    except (OSError, TimeoutError) as exc:
        raise HttpError(f"cannot connect to {endpoint}: {exc or 'timed out'}") from exc


async def _read_until(reader: asyncio.StreamReader, parser: _Parser, head_only: bool) -> None:
    while not (parser.head_done if head_only else parser.done):
        data = await reader.read(65536)
        if not data:
            headers = parser.response.headers
            if parser.head_done and "content-length" not in headers \
                    and "chunked" not in headers.get("transfer-encoding", ""):
                return  # a body that ends at the close (httptools has no end-of-input call)
            raise HttpError("the server closed the connection before the answer ended")
        parser.feed(data)


def _close(writer: asyncio.StreamWriter) -> None:
    with suppress(OSError, RuntimeError):
        writer.close()


async def request(endpoint: Endpoint, method: str, path: str, body: bytes | None = None, *,
                  headers: dict[str, str] | None = None, timeout: float = 10.0) -> Response:
    """Send one request and read its whole answer within `timeout` seconds."""
    reader, writer = await _connect(endpoint, timeout)
    parser = _Parser()
    try:
        writer.write(_encode(method, path, endpoint, body, headers))
        await asyncio.wait_for(_read_until(reader, parser, head_only=False), timeout)
    except (OSError, TimeoutError) as exc:
        raise HttpError(f"{method} {endpoint}{path}: {exc or 'timed out'}") from exc
    finally:
        _close(writer)
    parser.response.body = parser.take()
    return parser.response


async def request_json(endpoint: Endpoint, method: str, path: str, payload: Any = None, *,
                       timeout: float = 10.0) -> tuple[int, Any]:
    """A request with a JSON body (if `payload` is not None) and a JSON answer."""
    body = None if payload is None else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"} if body is not None else None
    response = await request(endpoint, method, path, body, headers=headers, timeout=timeout)
    return response.status, response.json() if response.body else None


class Stream:
    """An answer whose body is read as it comes, a line at a time."""

    def __init__(self, reader: asyncio.StreamReader, parser: _Parser) -> None:
        self._reader = reader
        self._parser = parser
        self._pending = b""
        self.status = parser.response.status
        self.headers = parser.response.headers

    async def body(self) -> bytes:
        """The rest of the body (for an error answer)."""
        while not self._parser.done:
            data = await self._reader.read(65536)
            if not data:
                break
            self._parser.feed(data)
        return self._pending + self._parser.take()

    async def lines(self) -> AsyncIterator[bytes]:
        """Each non-empty line of the body, until it ends (HttpError if the connection
        drops first)."""
        while True:
            self._pending += self._parser.take()
            while (end := self._pending.find(b"\n")) >= 0:
                line, self._pending = self._pending[:end].strip(), self._pending[end + 1:]
                if line:
                    yield line
            if len(self._pending) > MAX_LINE:
                raise HttpError(f"a streamed line of over {MAX_LINE} bytes")
            if self._parser.done:
                if self._pending.strip():
                    yield self._pending.strip()
                return
            try:
                data = await self._reader.read(65536)
            except OSError as exc:
                raise HttpError(f"the stream broke: {exc}") from exc
            if not data:
                raise HttpError("the server closed the stream")
            self._parser.feed(data)


@asynccontextmanager
async def stream(endpoint: Endpoint, method: str, path: str, body: bytes | None = None, *,
                 headers: dict[str, str] | None = None, timeout: float = 10.0
                 ) -> AsyncIterator[Stream]:
    """Send one request and give its answer once its head is in (within `timeout`); the
    body is read from the `Stream` for as long as the caller wants."""
    reader, writer = await _connect(endpoint, timeout)
    parser = _Parser()
    try:
        writer.write(_encode(method, path, endpoint, body, headers))
        try:
            await asyncio.wait_for(_read_until(reader, parser, head_only=True), timeout)
        except (OSError, TimeoutError) as exc:
            raise HttpError(f"{method} {endpoint}{path}: {exc or 'timed out'}") from exc
        yield Stream(reader, parser)
    finally:
        _close(writer)
