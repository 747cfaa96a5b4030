"""Socket mode: the listening sockets the daemon binds once and hands to every instance of an
app, and which app owns each.

A socket is bound on its app's first use and kept while any instance (running, pending in a
roll, retiring) or the app's next instances may serve it; then it is closed. An address has one
owner at a time: another app asking for it is refused, with the key path.

A Unix socket (`unix:/run/wharf/web.sock`) is handed over the same way. Its file is Wharf's:
created with its directory, a stale one from a server that died removed first (a live one is
refused), given `socket_mode` and `socket_group`, and removed when the socket is closed.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable

from wharf.addresses import bind_unix, format_address, remove_unix, set_mode, unix_path
from wharf.config.model import AppConfig
from wharf.errors import ControlError

Address = tuple[str, int]
BACKLOG = 1024


class SharedSockets:
    """The shared sockets of socket-mode apps, by address, with their owner."""

    def __init__(self) -> None:
        self._sockets: dict[Address, tuple[str, socket.socket]] = {}
        self._files: dict[Address, int] = {}  # a Unix socket's file: its inode

    def __repr__(self) -> str:
        return f"<SharedSockets {sorted(self._sockets)}>"

    def owners(self) -> dict[Address, str]:
        """Each bound address, with the app it is bound for."""
        return {address: name for address, (name, _) in self._sockets.items()}

    def listen_fd(self, app: AppConfig) -> int | None:
        """The shared socket of a socket-mode app, bound on first use; None for an app on its
        own ports. It stays blocking: the instances share its file status flags, and may
        expect that."""
        if app.socket is None:
            return None
        owner, sock = self._sockets.get(app.socket, (app.name, None))
        where = format_address(*app.socket)
        if owner != app.name:  # the reload's checks refuse this; a race could still get here
            raise ControlError(f"apps.{app.name}.socket: {where} is still bound for app "
                               f"{owner}")
        if sock is None:
            try:
                sock = self._bind(app)
            except OSError as exc:
                named = f" ({exc.filename})" if exc.filename else ""
                raise ControlError(f"apps.{app.name}.socket: cannot bind {where}: "
                                   f"{exc.strerror}{named}") from None
            self._sockets[app.socket] = (app.name, sock)
        elif app.socket in self._files:  # a reload may have changed them
            path = unix_path(*app.socket)
            assert path is not None
            with contextlib.suppress(OSError):
                set_mode(path, app.socket_mode, app.socket_group)
        return sock.fileno()

    def _bind(self, app: AppConfig) -> socket.socket:
        assert app.socket is not None
        path = unix_path(*app.socket)
        if path is not None:
            sock, self._files[app.socket] = bind_unix(path, app.socket_mode, app.socket_group,
                                                      BACKLOG)
            return sock
        host, port = app.socket
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(BACKLOG)
        except OSError:
            sock.close()
            raise
        return sock

    def close_unused(self, used: Iterable[Address | None]) -> None:
        """Close the sockets whose address is not in `used`: their app was removed, or moved
        to another address."""
        keep = set(used)
        for address in [a for a in self._sockets if a not in keep]:
            self._sockets.pop(address)[1].close()
            path, inode = unix_path(*address), self._files.pop(address, None)
            if path is not None and inode is not None:
                remove_unix(path, inode)

    def close(self) -> None:
        """Close every socket."""
        self.close_unused(())
