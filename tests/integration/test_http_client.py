"""wharf.clients.http against real sockets: whole answers, streamed lines, answers that are
not HTTP, a server that is not there, and a Unix socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from wharf.clients.http import Endpoint, HttpError, request, request_json, stream

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(answer: Answer, unix: Path | None = None) -> tuple[asyncio.AbstractServer,
                                                                   Endpoint]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await answer(reader, writer)
        writer.close()

    if unix is not None:
        return await asyncio.start_unix_server(handle, str(unix)), Endpoint(unix=str(unix))
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, Endpoint("127.0.0.1", server.sockets[0].getsockname()[1])


def fixed(raw: bytes) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()
    return answer


def test_endpoints_parse_and_refuse_what_they_cannot_reach() -> None:
    assert Endpoint.parse("http://10.0.0.1:2379") == Endpoint("10.0.0.1", 2379)
    assert Endpoint.parse("unix:///run/docker.sock") == Endpoint(unix="/run/docker.sock")
    for bad in ("tcp://x:1", "unix://", "http://", "2379"):
        with pytest.raises(ValueError):
            Endpoint.parse(bad)


def test_a_json_answer_by_length_and_one_that_ends_at_the_close() -> None:
    async def main() -> None:
        server, endpoint = await serve(fixed(
            b'HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{"a": [1]}\n'))
        async with server:
            assert await request_json(endpoint, "POST", "/x", {"q": 1}) == (200, {"a": [1]})
        server, endpoint = await serve(fixed(b"HTTP/1.1 404 Not Found\r\n\r\nno such thing"))
        async with server:
            answer = await request(endpoint, "GET", "/y")
            assert (answer.status, answer.body) == (404, b"no such thing")

    asyncio.run(main())


def test_a_stream_gives_lines_as_they_come_and_says_when_it_broke() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in (b'{"n": 1}\n{"n"', b': 2}\n', b"\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        # the connection closes without the last chunk: the stream broke

    async def main() -> list[bytes]:
        server, endpoint = await serve(answer)
        lines = []
        async with server, stream(endpoint, "GET", "/events") as answered:
            assert answered.status == 200
            with pytest.raises(HttpError, match="closed"):
                async for line in answered.lines():
                    lines.append(line)
        return lines

    assert asyncio.run(main()) == [b'{"n": 1}', b'{"n": 2}']


def test_an_answer_that_is_not_http_and_a_server_that_is_not_there() -> None:
    async def main() -> None:
        server, endpoint = await serve(fixed(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
        async with server:
            with pytest.raises(HttpError, match="not HTTP"):
                await request(endpoint, "GET", "/")
        server.close()
        await server.wait_closed()
        with pytest.raises(HttpError, match="cannot connect"):
            await request(endpoint, "GET", "/")

    asyncio.run(main())


def test_a_unix_socket_is_asked_like_a_port(tmp_path: Path) -> None:
    async def main() -> None:
        server, endpoint = await serve(fixed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"), tmp_path / "api.sock")
        async with server:
            assert await request_json(endpoint, "GET", "/v1.41/containers/json") == (200, [])

    asyncio.run(main())
