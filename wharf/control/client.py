"""The CLI's side of the control socket: plain blocking sockets, no event loop needed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wharf.control.protocol import decode, encode
from wharf.errors import ControlError, UsageError, WharfError


class RemoteError(WharfError):
    """An error the daemon reported; keeps the daemon's exit code."""

    def __init__(self, message: str, hint: str, exit_code: int) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code


def socket_path(state_dir: Path) -> Path:
    """The control socket of the daemon that keeps its state in `state_dir`."""
    return state_dir / "wharf.sock"


def daemon_socket(config_path: Path) -> Path:
    """The control socket of the daemon running `config_path`: in the state_dir the file
    names, else in its default one (a daemon started before `state_dir` was edited in still
    answers there, to refuse the change in a reload and to be stopped). Without the file and
    a daemon, say that there is no config file rather than that no daemon runs."""
    from wharf.config import default_state_dir, state_dir_of

    path = config_path.absolute()
    candidates = [socket_path(state_dir_of(path)), socket_path(default_state_dir(path))]
    found = next((s for s in candidates if s.exists()), None)
    if found is not None:
        return found
    if not path.exists():
        raise UsageError(f"no config file: {path}",
                         hint="run wharf in the directory of your wharf.toml, or name the file "
                              "with `-c FILE`")
    return candidates[0]


def connect(path: Path, timeout: float | None = 5.0) -> socket.socket:
    """Connect to a daemon, or raise ControlError saying none runs there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        raise ControlError(f"no Wharf daemon is running for this config (no answer on {path})",
                           hint="start one with `wharf up -d`") from None
    except PermissionError:
        sock.close()
        raise ControlError(f"permission denied on {path}",
                           hint="the daemon belongs to another user") from None
    return sock


def stream(path: Path, command: str, args: dict[str, Any],
           timeout: float | None = None) -> Iterator[dict[str, Any]]:
    """Send one command; yield the streamed messages, then the result message."""
    with connect(path) as sock:
        sock.settimeout(timeout)
        yield from exchange(sock, command, args)


def exchange(sock: socket.socket, command: str,
             args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Send one command on a connected socket; yield the streamed messages, then the result
    message. A caller that owns the socket can end a follow from another thread by shutting
    the socket down (this then raises ControlError, as a daemon that went away does)."""
    sock.sendall(encode({"command": command, "args": args}))
    with sock.makefile("rb") as f:
        for line in f:
            message = decode(line)
            if "stream" in message:
                yield message
                continue
            if not message.get("ok"):
                raise RemoteError(message.get("error", "unknown error"),
                                  message.get("hint", ""), int(message.get("exit_code", 1)))
            yield message
            return
    raise ControlError("the daemon closed the connection without answering",
                       hint="it may have stopped; see its log in the state directory")


def call(path: Path, command: str, args: dict[str, Any] | None = None,
         timeout: float | None = None) -> Any:
    """Send one command and return its result."""
    for message in stream(path, command, args or {}, timeout):
        if "stream" not in message:
            return message.get("result")
    return None
