"""A module-scoped daemon with the admin listener on, and a small HTTP client for it."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from tests.integration.conftest import Wharf
from tests.integration.proxy_fixture import free_port

CONFIG = """
    [admin]
    listen = "127.0.0.1:{admin}"

    [proxy]
    listen = ["127.0.0.1:{proxy}"]

    [apps.web]
    command = "{py} {apps}/httpapp.py"
    instances = 2
    startsecs = 0

    [apps.hup]
    command = "{py} {apps}/hupper.py"
    startsecs = 0

    [[routes]]
    path = "/"
    app = "web"
    health = { path = "/", interval = "0.5s", rise = 1 }
"""


@dataclass
class Answer:
    """A finished HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Admin:
    """The daemon, its admin port and token."""

    wharf: Wharf
    port: int
    token: str

    def connection(self, timeout: float = 60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method: str, path: str, token: str | None = "", body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Answer:
        """One request; `token` "" means the right one, None none at all."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token or self.token}"
        conn = self.connection()
        try:
            conn.request(method, path, body=body, headers=sent)
            answer = conn.getresponse()
            return Answer(answer.status, {k.lower(): v for k, v in answer.getheaders()},
                          answer.read())
        finally:
            conn.close()

    def stream(self, method: str, path: str, accept: str) -> Stream:
        """Open a streaming answer and read its head; the caller reads `lines` (as they
        come: http.client buffers a chunked body) and closes it."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     f"Authorization: Bearer {self.token}\r\nAccept: {accept}\r\n\r\n"
                     .encode())
        file = sock.makefile("rb")
        status = int(file.readline().split()[1])
        headers = {}
        while (line := file.readline().rstrip(b"\r\n")):
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        return Stream(sock, file, status, headers)


@dataclass
class Stream:
    """A streaming (chunked) answer being read."""

    sock: socket.socket
    file: BinaryIO
    status: int
    headers: dict[str, str]

    @property
    def lines(self) -> Iterator[bytes]:
        """The body's lines, each as soon as its chunk has come."""
        pending = b""
        while (size := int(self.file.readline().strip() or b"0", 16)):
            pending += self.file.read(size)
            self.file.readline()  # the CRLF after the chunk
            *whole, pending = pending.split(b"\n")
            yield from (line + b"\n" for line in whole)

    def close(self) -> None:
        """Hang up (which also wakes a thread blocked reading it)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.file.close()


def start_admin(root: Path) -> tuple[Wharf, int]:
    """A project with the admin listener in `root`, its daemon up; returns it and the port."""
    wharf = Wharf(root)
    port = free_port()
    wharf.write_config(CONFIG.replace("{admin}", str(port)).replace("{proxy}",
                                                                    str(free_port())))
    wharf.up()
    wharf.wait_ready("web", 2)
    return wharf, port


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    """A daemon with the admin API, two routed web instances and a `hup` app."""
    wharf, port = start_admin(tmp_path_factory.mktemp("admin"))
    try:
        token = (wharf.root / ".wharf" / "admin.token").read_text().strip()
        yield Admin(wharf, port, token)
    finally:
        wharf.close()
