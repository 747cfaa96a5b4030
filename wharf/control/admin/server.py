"""The admin listener: the ASGI app of `app.py` served by uvicorn, in the daemon's own loop.

Why uvicorn: a well-kept HTTP/1 server on httptools (llhttp, already the proxy's parser) that
adds about 3 MiB to the daemon's RSS where aiohttp's server adds about 13 MiB (measured with
`bench/admin_rss.py`), and it is imported only when `[admin]` is in the config. Its Server is
driven piecewise (startup, main_loop, shutdown) rather than with `serve()`, which would take
over the daemon's signal handlers; the socket is bound here, so that a port in use is a
ControlError, not uvicorn's sys.exit.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from wharf.config.model import AdminConfig
from wharf.control.admin.app import AdminApp
from wharf.control.admin.auth import Authenticator, ensure_token
from wharf.control.api import DaemonApi
from wharf.errors import ControlError

if TYPE_CHECKING:
    import uvicorn

SHUTDOWN_TIMEOUT = 2  # seconds for answers in flight when the daemon stops


class AdminServer:
    """Serves the admin API on `[admin] listen`."""

    def __init__(self, api: DaemonApi, config: AdminConfig) -> None:
        assert config.token_file is not None  # the loader fills it in
        self.config = config
        self.app = AdminApp(api, Authenticator(ensure_token(config.token_file)),
                            config.metrics_auth)
        self._server: uvicorn.Server | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    def __repr__(self) -> str:
        return f"<AdminServer {self.url}>"

    @property
    def url(self) -> str:
        """The listener's base URL."""
        host, port = self.config.listen
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    async def start(self) -> None:
        """Bind the listener and start serving."""
        self._socket = bind_tcp(*self.config.listen)
        self._server, self._loop_task = await serve(self.app, self._socket)

    async def close(self) -> None:
        """End the streams, stop accepting, let answers in flight finish (briefly)."""
        self.app.close()
        await shut_down(self._server, self._loop_task, self._socket)


async def serve(app: Any, sock: socket.socket) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    """Serve the ASGI `app` on a bound, listening socket (TCP or Unix) in the running loop."""
    import uvicorn

    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                            http="httptools", ws="none", server_header=False,
                            timeout_graceful_shutdown=SHUTDOWN_TIMEOUT)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    return server, asyncio.get_running_loop().create_task(server.main_loop())


async def shut_down(server: uvicorn.Server | None, task: asyncio.Task[None] | None,
                    sock: socket.socket | None) -> None:
    """Stop a server started by `serve`: no new connections, answers in flight finish."""
    if server is None:
        return
    server.should_exit = True
    if task is not None:
        await task
    await server.shutdown(sockets=[sock] if sock else None)


def bind_tcp(host: str, port: int, key: str = "admin.listen") -> socket.socket:
    """A listening TCP socket; ControlError naming `key` if the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ControlError(f"{key} {host}:{port}: {exc.strerror}",
                           hint=f"choose another address for {key}, or stop what holds it"
                           ) from None
    sock.setblocking(False)
    return sock
