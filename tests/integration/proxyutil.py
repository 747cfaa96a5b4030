"""Helpers for talking to the proxy: raw sockets and parsed responses."""

from __future__ import annotations

import email.utils
import socket
import time
from dataclasses import dataclass

import httptools


@dataclass
class Response:
    """A response as the client received it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """First value of a header."""
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


class _Collector:
    def __init__(self) -> None:
        self.responses: list[Response] = []
        self._headers: list[tuple[str, str]] = []
        self._body = b""
        self.parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        assert self.parser is not None
        self.responses.append(Response(self.parser.get_status_code(), self._headers, self._body))
        self._headers, self._body = [], b""


def parse_responses(data: bytes) -> list[Response]:
    """Every complete response in a byte stream."""
    collector = _Collector()
    parser = httptools.HttpResponseParser(collector)
    collector.parser = parser
    try:
        parser.feed_data(data)
        parser.feed_data(b"")
    except httptools.HttpParserError:
        pass
    return collector.responses


def exchange(port: int, data: bytes, timeout: float = 5.0, source: str = ""
             ) -> tuple[bytes, bool]:
    """Send raw bytes (from the address `source`, if given); read until the proxy closes
    (True) or stays silent for `timeout`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as s:
        s.sendall(data)
        received = b""
        try:
            while chunk := s.recv(65536):
                received += chunk
            return received, True
        except TimeoutError:
            return received, False
        except ConnectionResetError:
            return received, True


def request(port: int, data: bytes, timeout: float = 5.0, source: str = "") -> Response:
    """Send one request that asks to close; return its response."""
    received, _ = exchange(port, data, timeout, source)
    responses = parse_responses(received)
    assert responses, f"no response in {received!r}"
    return responses[0]


def get(port: int, path: str, host: str = "test", headers: str = "", source: str = ""
        ) -> Response:
    """A GET with Connection: close (from the address `source`, if given)."""
    return request(port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}"
                         "Connection: close\r\n\r\n".encode(), source=source)


def probe(port: int, raw: bytes = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
          ) -> bytes:
    """What the proxy answers to `raw`, or b"" while nothing listens yet (for wait_until)."""
    try:
        return exchange(port, raw, timeout=2)[0]
    except OSError:
        return b""


def assert_current_date(value: str | None, before: float) -> None:
    """`value` is an IMF-fixdate (RFC 9110 5.6.7) of now: not before `before` (less the one
    second the proxy's cached value may lag), not after the moment of this check."""
    assert value is not None, "no Date header"
    assert value.endswith(" GMT") and len(value) == 29, value
    when = email.utils.parsedate_to_datetime(value).timestamp()
    assert int(before) - 1 <= when <= time.time(), (value, before)
