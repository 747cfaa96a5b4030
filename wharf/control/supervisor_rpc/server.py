"""The `[supervisor_rpc]` listener: supervisord's HTTP surface, as supervisorctl uses it.

- `POST /RPC2`: XML-RPC (the standard library's xmlrpc.client reads and writes the wire
  format), each call run by `SupervisorMethods`.
- `GET /logtail/NAME[/stdout|stderr]`: `supervisorctl tail -f`: the last 1024 bytes of the
  log, then every new line as it is written (chunked, until the client goes away).
- HTTP Basic authentication when `username`/`password` are set (supervisorctl -u/-p), checked
  before a body is read; a wrong one is a 401, as supervisord answers.

Served by uvicorn in the daemon's loop, as the admin API is (imported only when configured).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import os
import socket
import xmlrpc.client
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from wharf.config.supervisor_rpc import SupervisorRpcConfig
from wharf.control.admin.app import read_body
from wharf.control.admin.server import bind_tcp, serve, shut_down
from wharf.control.api import DaemonApi
from wharf.control.supervisor_rpc.methods import SupervisorMethods
from wharf.control.supervisor_rpc.names import Faults, RpcFault
from wharf.errors import ControlError

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("wharf.control")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY = 1024 * 1024  # an XML-RPC call; supervisorctl's are a few hundred bytes
TAIL_START = 1024  # bytes of history `tail -f` begins with (supervisord's logtail does so)
SOCKET_MODE = 0o700  # supervisord's [unix_http_server] chmod default


class RpcApp:
    """The ASGI application."""

    def __init__(self, api: DaemonApi, config: SupervisorRpcConfig) -> None:
        self.methods = SupervisorMethods(api)
        self._api = api
        self._credentials = None if config.username is None else \
            f"{config.username}:{config.password}".encode()
        self._closing = asyncio.Event()

    def __repr__(self) -> str:
        return f"<RpcApp auth={'on' if self._credentials else 'off'}>"

    def close(self) -> None:
        """End every `tail -f`."""
        self._closing.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self._authorized(headers.get("authorization")):
            return await _respond(send, 401, b"Unauthorized", "text/plain",
                                  [("www-authenticate", 'Basic realm="default"')])
        path, method = scope["path"], scope["method"]
        if path == "/RPC2" and method == "POST":
            return await self._rpc(receive, send)
        if path.startswith("/logtail/") and method == "GET":
            return await self._logtail(unquote(path.removeprefix("/logtail/")), receive, send)
        await _respond(send, 404, b"Not Found", "text/plain")

    def _authorized(self, header: str | None) -> bool:
        if self._credentials is None:
            return True
        scheme, _, value = (header or "").partition(" ")
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return scheme.lower() == "basic" and hmac.compare_digest(given, self._credentials)

    async def _rpc(self, receive: Receive, send: Send) -> None:
        body = await read_body(receive, MAX_BODY)
        if body is None:
            return await _respond(send, 413, b"Request Entity Too Large", "text/plain")
        try:
            params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        except Exception:  # expat's and xmlrpc's errors: a malformed request
            return await _respond(send, 400, b"Bad Request", "text/plain")
        try:
            value = await self.methods.call(method or "", params)
            answer = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True)
        except RpcFault as fault:
            answer = xmlrpc.client.dumps(xmlrpc.client.Fault(fault.code, fault.text))
        except Exception as exc:  # a bug: the caller gets a fault, the daemon stays up
            log.exception("supervisor_rpc: %s failed", method)
            answer = xmlrpc.client.dumps(xmlrpc.client.Fault(Faults.FAILED, f"FAILED: {exc!r}"))
        await _respond(send, 200, answer.encode(), "text/xml")

    async def _logtail(self, spec: str, receive: Receive, send: Send) -> None:
        name, _, channel = spec.partition("/")
        try:
            app, path = self.methods.log_path(name, channel or "stdout")
        except RpcFault:
            return await _respond(send, 404, b"Not Found", "text/plain")
        stream = "out" if channel in ("", "stdout") else "err"
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4096)

        def new_output(which: str, data: bytes) -> None:
            if which == stream:
                with contextlib.suppress(asyncio.QueueFull):  # a stalled reader loses lines
                    queue.put_nowait(data)

        stop = self._api.follow_logs(app, new_output)  # before the history: nothing is lost
        try:
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/plain;charset=utf-8"), (b"cache-control", b"no-cache")]})
            await send({"type": "http.response.body", "body": await _last_bytes(path),
                        "more_body": True})
            await self._follow(queue, receive, send)
        finally:
            stop()
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _follow(self, queue: asyncio.Queue[bytes], receive: Receive, send: Send) -> None:
        """Send new output until the client leaves or the daemon stops."""
        async def gone() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        ending = [asyncio.ensure_future(gone()), asyncio.ensure_future(self._closing.wait())]
        try:
            while True:
                getting = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait([getting, *ending],
                                             return_when=asyncio.FIRST_COMPLETED)
                if getting not in done:
                    getting.cancel()
                    return
                await send({"type": "http.response.body", "body": getting.result(),
                            "more_body": True})
        finally:
            for task in ending:
                task.cancel()


class RpcServer:
    """Serves `RpcApp` on `[supervisor_rpc] listen`."""

    def __init__(self, api: DaemonApi, config: SupervisorRpcConfig) -> None:
        self.config = config
        self.app = RpcApp(api, config)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        return f"<RpcServer {self.config.url}>"

    async def start(self) -> None:
        """Bind the listener and start serving."""
        path = self.config.unix_path
        self._socket = _bind_unix(path) if path is not None else \
            bind_tcp(*self.config.listen, key="supervisor_rpc.listen")  # type: ignore[misc]
        self._server, self._task = await serve(self.app, self._socket)

    async def close(self) -> None:
        """Stop serving; remove the socket file."""
        self.app.close()
        await shut_down(self._server, self._task, self._socket)
        path = self.config.unix_path
        if path is not None and self._socket is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def _bind_unix(path: Path) -> socket.socket:
    """A listening Unix socket at `path`, mode 0700; a stale file (nobody answers) is
    replaced, a live one is a ControlError."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except FileNotFoundError:
        pass
    except OSError:
        with contextlib.suppress(OSError):
            path.unlink()
    else:
        raise ControlError(f"supervisor_rpc.listen unix:{path}: something already answers "
                           "there", hint="stop the supervisord that holds it, or choose "
                           "another path") from None
    finally:
        probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sock.bind(str(path))
        os.chmod(path, SOCKET_MODE)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ControlError(f"supervisor_rpc.listen unix:{path}: {exc.strerror}",
                           hint="choose a path in a directory Wharf can write") from None
    sock.setblocking(False)
    return sock


async def _last_bytes(path: Path) -> bytes:
    def read() -> bytes:
        try:
            with path.open("rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - TAIL_START))
                return f.read(TAIL_START)
        except OSError:
            return b""

    return await asyncio.to_thread(read)


async def _respond(send: Send, status: int, body: bytes, content_type: str,
                   extra: list[tuple[str, str]] | None = None) -> None:
    headers = [(b"content-type", content_type.encode())] + \
        [(k.encode(), v.encode()) for k, v in extra or []]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
