"""ClientConnection's lifetime: a closed connection is freed at once, by reference counting."""

import asyncio
import gc

from wharf.proxy.plane import DataPlane
from wharf.proxy.server import ClientConnection
from wharf.registry.snapshot import Snapshot


def test_a_closed_connection_is_freed_without_the_garbage_collector():
    """Its parser holds it as its protocol; left in place, that cycle kept every closed
    connection and its transport (with uvloop's 256 KiB TLS buffer) until a GC pass."""
    async def scenario() -> list[ClientConnection]:
        plane = DataPlane(asyncio.get_running_loop())
        plane.apply(Snapshot(version=1))
        server = await asyncio.get_running_loop().create_server(
            lambda: ClientConnection(plane), "127.0.0.1", 0)  # type: ignore[arg-type,return-value]
        port = server.sockets[0].getsockname()[1]
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.1 404 ")
            writer.close()
            await writer.wait_closed()
        while plane.connections:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)  # connection_lost runs in a callback of its own
        server.close()
        await server.wait_closed()
        return [o for o in gc.get_objects() if isinstance(o, ClientConnection)]

    gc.collect()
    gc.disable()
    try:
        left = asyncio.run(scenario())
    finally:
        gc.enable()
    assert left == []
