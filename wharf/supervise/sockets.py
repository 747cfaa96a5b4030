"""Socket mode: the listening sockets the daemon binds once and hands to every instance of an
app, and which app owns each.

A socket is bound on its app's first use and kept while any instance (running, pending in a
roll, retiring) or the app's next instances may serve it; then it is closed. An address has one
owner at a time: another app asking for it is refused, with the key path.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from wharf.config.model import AppConfig
from wharf.errors import ControlError

Address = tuple[str, int]
BACKLOG = 1024


class SharedSockets:
    """The shared sockets of socket-mode apps, by address, with their owner."""

    def __init__(self) -> None:
        self._sockets: dict[Address, tuple[str, socket.socket]] = {}

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
        host, port = app.socket
        owner, sock = self._sockets.get(app.socket, (app.name, None))
        if owner != app.name:  # the reload's checks refuse this; a race could still get here
            raise ControlError(f"apps.{app.name}.socket: {host}:{port} is still bound for app "
                               f"{owner}")
        if sock is None:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(BACKLOG)
            except OSError as exc:
                sock.close()
                raise ControlError(f"apps.{app.name}.socket: cannot bind {host}:{port}: "
                                   f"{exc.strerror}") from None
            self._sockets[app.socket] = (app.name, sock)
        return sock.fileno()

    def close_unused(self, used: Iterable[Address | None]) -> None:
        """Close the sockets whose address is not in `used`: their app was removed, or moved
        to another address."""
        keep = set(used)
        for address in [a for a in self._sockets if a not in keep]:
            self._sockets.pop(address)[1].close()

    def close(self) -> None:
        """Close every socket."""
        self.close_unused(())
