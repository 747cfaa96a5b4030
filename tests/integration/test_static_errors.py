"""An unforeseen error while serving a file: a 500, one log line, and the connection goes on.

No request can make the static server fail once its route was checked by the config, so this
test serves, in this process, a data plane whose snapshot has a root no file-system call
accepts (a NUL byte: os.path.realpath raises ValueError). Real sockets, a real proxy core.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import uvloop

from tests.integration.proxyutil import parse_responses
from wharf.proxy.plane import DataPlane
from wharf.proxy.server import ClientConnection
from wharf.registry.snapshot import Route, Snapshot


async def _serve_and_ask(root: Path, raw: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    plane = DataPlane(loop)
    plane.apply(Snapshot(version=1, routes=(Route(path="/broken", static="/no\x00where"),
                                            Route(path="/", static=str(root)))))
    factory = cast(Callable[[], asyncio.Protocol], lambda: ClientConnection(plane))
    server = await loop.create_server(factory, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        data = await asyncio.wait_for(reader.read(), timeout=10)
        writer.close()
        return data
    finally:
        server.close()


def test_an_unexpected_error_is_a_500_with_one_log_line(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture):
    (tmp_path / "ok.txt").write_text("fine\n")
    raw = (b"GET /broken/x HTTP/1.1\r\nHost: t\r\n\r\n"
           b"GET /ok.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    with caplog.at_level(logging.ERROR, logger="wharf.proxy"):
        data = uvloop.run(_serve_and_ask(tmp_path, raw))
    assert [(r.status, r.body) for r in parse_responses(data)] == [
        (500, b"500 Internal Server Error\n"), (200, b"fine\n")]
    [record] = [r for r in caplog.records if r.name == "wharf.proxy"]
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert "/broken/x" in record.getMessage() and "ValueError" in record.getMessage()


