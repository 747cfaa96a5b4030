"""Addresses as Wharf carries them: `(host, port)` for TCP, and `("unix:" + absolute path, 0)`
for a Unix socket.

One shape for both keeps every table keyed by address (pools, health checks, ejection, traffic
counters, the snapshot's `[host, port, weight]` backends) as it is. Port 0 tells them apart: no
TCP backend or shared socket has port 0 (the config refuses it), so the data plane tests an int,
not a string, on each new connection. The config spells a Unix address as nginx and gunicorn do:
`unix:/run/app.sock`.

Also here, shared by the config checks (`wharf up`, `reload`) and the supervisor that binds
app sockets: what stands in the way of binding a TCP address or a Unix socket's file, binding
it with its mode and group, and removing it.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import socket
import stat
from typing import Final

UNIX: Final = "unix:"
# sun_path is 108 bytes on Linux, including the terminating NUL.
SUN_PATH_MAX: Final = 107


def unix_address(path: str) -> tuple[str, int]:
    """The address of the Unix socket at `path`."""
    return UNIX + path, 0


def unix_path(host: str, port: int) -> str | None:
    """The socket path of a Unix address; None for a TCP one."""
    return host[len(UNIX):] if port == 0 and host.startswith(UNIX) else None


def format_address(host: str, port: int) -> str:
    """`127.0.0.1:8080`, `[::1]:8080`, `unix:/run/app.sock`: as status, logs and metrics show
    an address, and as the config spells it."""
    if port == 0 and host.startswith(UNIX):
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def unix_bind_problem(path: str) -> str | None:
    """Why a Unix socket could not be bound at `path` now, or None. A socket file nobody
    accepts on is stale (its server died without removing it): binding removes it. Anything
    else in the way, a live socket or a file that is not a socket, is left alone."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the walk below says which
        mode = None
    except OSError as exc:
        return f"cannot be looked at: {exc.strerror}"
    if mode is not None:
        if not stat.S_ISSOCK(mode):
            return "exists and is not a socket (only a stale socket is removed)"
        if not _is_stale(path):
            return "is in use: a process accepts connections on it"
    parent = os.path.dirname(path)
    while not os.path.lexists(parent):  # the directories binding will create
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        return f"cannot be created: {parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: no permission to write in {parent}"
    return None


def _is_stale(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(path)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False  # EACCES, ...: someone's socket, not ours to judge
    return False


def bind_unix(path: str, mode: int, group: str | None, backlog: int) -> tuple[socket.socket, int]:
    """A listening Unix socket at `path`, and the inode of its file: the directory is created
    if missing (0755), a stale socket file there removed, the file given `mode` and `group`.
    OSError says what failed, with the path in its message."""
    problem = unix_bind_problem(path)
    if problem is not None:
        raise OSError(errno.EADDRINUSE, f"{path} {problem}")
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # stale: unix_bind_problem said so
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    inode = os.lstat(path).st_ino
    try:
        set_mode(path, mode, group)  # before listen(): nobody can connect yet
        sock.listen(backlog)
    except OSError:
        sock.close()
        remove_unix(path, inode)
        raise
    return sock, inode


def set_mode(path: str, mode: int, group: str | None) -> None:
    """Give a socket file its mode and group (None: leave the group)."""
    if group is not None:
        os.chown(path, -1, grp.getgrnam(group).gr_gid)
    os.chmod(path, mode)


def remove_unix(path: str, inode: int) -> None:
    """Remove the socket file at `path` if it is still the one bound with that inode: another
    server may have bound the path since."""
    with contextlib.suppress(OSError):
        found = os.lstat(path)
        if found.st_ino == inode and stat.S_ISSOCK(found.st_mode):
            os.unlink(path)


def bind_error(host: str, port: int) -> OSError | None:
    """Try to bind `host:port` as an app would (SO_REUSEADDR, as servers set it); the error if
    it cannot be bound, else None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc
    return None
