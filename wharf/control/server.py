"""The control server: a Unix socket, mode 0600 in a 0700 directory, for the daemon's user only.

Each connection carries one request. A handler may stream messages (logs -f) and ends with one
result or error message (see `dispatch.execute`, which the admin HTTP API calls too).
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from pathlib import Path
from typing import Any

from wharf.control.api import DaemonApi
from wharf.control.dispatch import error_message, execute
from wharf.control.protocol import MAX_MESSAGE, decode, encode
from wharf.errors import ControlError

# The client of a reply that streams (logs -f) may read slowly; past this much unsent output
# lines are dropped for it rather than buffered without bound.
MAX_REPLY_BUFFER = 1024 * 1024


class _Reply:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.dropped = 0

    def send(self, message: dict[str, Any]) -> None:
        if self._writer.is_closing():
            return
        if self._writer.transport.get_write_buffer_size() > MAX_REPLY_BUFFER:
            self.dropped += 1
            return
        if self.dropped and "stream" in message:  # say so where the lines went missing
            self._writer.write(encode({"stream": message["stream"], "data":
                                       f"[wharf] {self.dropped} lines dropped: this reader "
                                       "was too slow\n"}))
            self.dropped = 0
        self._writer.write(encode(message))

    async def closed(self) -> None:
        while await self._reader.read(4096):
            pass


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class ControlServer:
    """Serves the control commands on a Unix socket."""

    def __init__(self, api: DaemonApi, path: Path) -> None:
        self._api = api
        self.path = path
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind the socket (refusing if another daemon answers on it) and start serving."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.path.parent, 0o700)
        if self.path.exists():
            if await _answers(self.path):
                raise ControlError(f"a Wharf daemon already runs on {self.path}",
                                   hint="use `wharf status`, or `wharf down` to stop it")
            self.path.unlink()
        old_umask = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path),
                                                           limit=MAX_MESSAGE)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        """Stop accepting, end open connections, and remove the socket file."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
            if uid not in (0, os.geteuid()):
                writer.write(encode(error_message(ControlError("permission denied"))))
                return
            writer.write(encode(await self._answer(reader, writer)))
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> dict[str, Any]:
        try:
            request = decode(await reader.readline())
        except ValueError as exc:  # bad JSON, or a line over the reader's limit
            return error_message(ControlError(f"malformed request: {exc}"))
        return await execute(self._api, str(request.get("command")), request.get("args") or {},
                             _Reply(reader, writer))


async def _answers(path: Path) -> bool:
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        return False
    writer.close()
    return True
