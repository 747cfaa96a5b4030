"""The buffered path of static files, in-process over a real socket pair: when the client's
transport still holds unsent bytes, a file is read and written through it, with back-pressure."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvloop

from tests.integration.proxyutil import parse_responses
from wharf.proxy.plane import DataPlane
from wharf.proxy.server import ClientConnection
from wharf.registry.snapshot import Route, Snapshot


async def _connected(root: Path) -> tuple[DataPlane, asyncio.Transport, ClientConnection,
                                          socket.socket]:
    """A data plane serving `root`, and a client connection to it over a socket pair: the
    plane, our transport, our protocol, and the client's end."""
    loop = asyncio.get_running_loop()
    plane = DataPlane(loop)
    plane.apply(Snapshot(routes=(Route(path="/", static=str(root.resolve())),)))
    ours, theirs = socket.socketpair()
    transport, conn = await loop.create_connection(lambda: ClientConnection(plane), sock=ours)
    return plane, transport, conn, theirs  # type: ignore[return-value]


def test_a_file_behind_unsent_bytes_goes_through_the_transport(tmp_path: Path):
    content = bytes(range(256)) * 8192  # 2 MiB
    (tmp_path / "f.bin").write_bytes(content)

    async def scenario() -> bytes:
        plane, transport, conn, theirs = await _connected(tmp_path)
        filler = b"-" * (4 * 1024 * 1024)
        transport.write(filler)  # more than the socket takes: the rest waits in the transport
        assert transport.get_write_buffer_size() > 0
        conn.data_received(b"GET /f.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert plane.static._senders, "the file transfer should be waiting for the transport"
        theirs.setblocking(False)
        received = bytearray()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while loop.time() < deadline:
            try:
                chunk = theirs.recv(1 << 20)
            except BlockingIOError:
                await asyncio.sleep(0.001)
                continue
            if not chunk:
                break
            received += chunk
        theirs.close()
        return bytes(received[len(filler):])

    data = uvloop.run(scenario())
    responses = parse_responses(data)
    assert len(responses) == 1 and responses[0].status == 200
    assert responses[0].body == content


def test_a_client_that_goes_away_mid_file_lets_go_of_it(tmp_path: Path):
    (tmp_path / "f.bin").write_bytes(bytes(range(256)) * 8192)

    async def scenario() -> None:
        plane, transport, conn, theirs = await _connected(tmp_path)
        transport.write(b"-" * (4 * 1024 * 1024))  # the buffered path, waiting to drain
        conn.data_received(b"GET /f.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        sender = plane.static._senders[conn]
        theirs.close()
        transport.abort()
        await asyncio.sleep(0.05)  # connection_lost runs on the next loop turn
        assert not plane.static._senders and sender.fd == -1

    uvloop.run(scenario())


def test_a_client_that_stops_reading_a_file_has_a_send_deadline(tmp_path: Path):
    (tmp_path / "big.bin").write_bytes(b"x" * (16 * 1024 * 1024))

    async def scenario() -> None:
        plane, _transport, conn, theirs = await _connected(tmp_path)
        conn.data_received(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")  # never read
        sender = plane.static._senders[conn]
        assert sender.raw and conn.deadline_kind == "send" and conn.deadline > 0
        conn.timed_out(conn.deadline)  # what the sweep does once it passes
        await asyncio.sleep(0.05)
        assert conn.closed and not plane.static._senders and sender.fd == -1
        theirs.close()

    uvloop.run(scenario())
