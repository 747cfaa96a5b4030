"""TlsConnection: TLS driven by the client connection over a plain TCP transport. A real
DataPlane with no routes (every request gets 404) on 127.0.0.1, real TLS clients."""

import asyncio
import gc
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from wharf.proxy import openssl, tlsconn
from wharf.proxy.downstream import Listener
from wharf.proxy.plane import DataPlane
from wharf.proxy.tls import TlsContexts
from wharf.proxy.tlsconn import TlsConnection
from wharf.registry.snapshot import Certificate, Snapshot, Tls
from wharf.testing.certs import TestCA

pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
CA = TestCA()
CHAIN, KEY = CA.issue(["a.test"])
REQUEST = b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"
T = TypeVar("T")


@pytest.fixture(autouse=True, params=["direct calls", "ssl module"])
def way(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test both ways: the handshake and close_notify by openssl.DIRECT's calls, as
    here, and through the `ssl` module alone, as where those cannot be made."""
    assert openssl.DIRECT is not None  # they can be made on this machine
    tlsconn._DIRECT = openssl.DIRECT if request.param == "direct calls" else None
    yield request.param
    tlsconn._DIRECT = openssl.DIRECT


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=CA.cert_pem)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def serve(scenario: Callable[[DataPlane, int], Awaitable[T]]) -> T:
    """Run `scenario(plane, port)` against a TLS listener of TlsConnections."""
    async def main() -> T:
        loop = asyncio.get_running_loop()
        plane = DataPlane(loop)
        plane.apply(Snapshot(version=1))
        tls = TlsContexts()
        tls.apply(Tls(certificates=(Certificate(("a.test",), CHAIN, KEY),)))
        listener = Listener("https", None, True, "127.0.0.1:0")
        server = await loop.create_server(
            lambda: TlsConnection(plane, listener, tls.listener),  # type: ignore[arg-type,return-value]
            "127.0.0.1", 0)
        try:
            return await scenario(plane, server.sockets[0].getsockname()[1])
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


def exchange(port: int, requests: int) -> tuple[list[bytes], str | None]:
    """Keep-alive requests on one connection, then `Connection: close`: what each answer
    began with, and the ALPN. A close without close_notify raises (no ragged EOFs)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            client_context().wrap_socket(raw, server_hostname="a.test",
                                         suppress_ragged_eofs=False) as tls:
        starts = []
        for i in range(requests):
            last = i == requests - 1
            tls.sendall(REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
                        if last else REQUEST)
            answer = tls.recv(65536)
            starts.append(answer[:12])
            if last:
                while tls.recv(65536):  # b"" at close_notify
                    pass
        return starts, tls.selected_alpn_protocol()


def test_requests_are_answered_over_tls_and_the_close_sends_close_notify():
    async def scenario(plane: DataPlane, port: int) -> tuple[list[bytes], str | None]:
        return await asyncio.to_thread(exchange, port, 3)

    starts, alpn = serve(scenario)
    assert starts == [b"HTTP/1.1 404"] * 3
    assert alpn == "http/1.1"


def test_the_connection_knows_it_is_https_with_the_alpn_chosen():
    async def scenario(plane: DataPlane, port: int) -> Listener:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_context(),
                                                       server_hostname="a.test")
        writer.write(REQUEST)
        await reader.readuntil(b"\r\n\r\n")
        (conn,) = plane.connections
        assert isinstance(conn, TlsConnection)
        writer.close()
        return conn.peer.listener

    assert serve(scenario) == Listener("https", "http/1.1", True, "127.0.0.1:0")


def test_a_handshake_not_done_by_its_deadline_is_dropped():
    async def scenario(plane: DataPlane, port: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # says nothing
        while not plane.connections:
            await asyncio.sleep(0.01)
        for conn in plane.connections:
            assert conn.deadline_kind == "handshake"
            conn.deadline = plane.loop.time() - 1
        plane.sweep()
        got = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return got

    assert serve(scenario) == b""


def test_a_refused_handshake_closes_the_connection_and_the_client_learns_why():
    def tls_1_1_only(port: int) -> str:
        ctx = client_context()
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            try:
                ctx.wrap_socket(raw, server_hostname="a.test")
            except ssl.SSLError as exc:
                return str(exc.reason)
        return "handshake done"

    async def scenario(plane: DataPlane, port: int) -> tuple[str, bytes, list[bytes]]:
        refused = await asyncio.to_thread(tls_1_1_only, port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)  # plain HTTP on a TLS port
        got = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        while plane.connections:
            await asyncio.sleep(0.01)
        # The refusal left nothing in OpenSSL's error queue to fail the next handshake.
        after, _ = await asyncio.to_thread(exchange, port, 1)
        return refused, got, after

    refused, plain, after = serve(scenario)
    assert "VERSION" in refused  # OpenSSL's protocol_version alert (or no shared cipher)
    assert after == [b"HTTP/1.1 404"]
    assert plain.startswith(b"HTTP/1.1 400 Bad Request\r\n")  # nginx's answer, then the close
    assert plain.endswith(b"The plain HTTP request was sent to the HTTPS port.\n")


def test_a_closed_tls_connection_is_freed_without_the_garbage_collector():
    """Its writer is one of its own methods: left in place, that cycle would keep every
    closed connection, its parser and its SSL object until a GC pass."""
    async def scenario(plane: DataPlane, port: int) -> list[TlsConnection]:
        await asyncio.to_thread(exchange, port, 2)
        while plane.connections:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # connection_lost runs in a callback of its own
        return [o for o in gc.get_objects() if isinstance(o, TlsConnection)]

    gc.collect()
    gc.disable()
    try:
        left = serve(scenario)
    finally:
        gc.enable()
    assert left == []
