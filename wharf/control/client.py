"""The CLI's side of the control socket: plain blocking sockets, no event loop needed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wharf.control.protocol import decode, encode
from wharf.errors import ControlError, WharfError


class RemoteError(WharfError):
    """An error the daemon reported; keeps the daemon's exit code."""

    def __init__(self, message: str, hint: str, exit_code: int) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code


def socket_path(state_dir: Path) -> Path:
    """The control socket of the daemon that keeps its state in `state_dir`."""
    return state_dir / "wharf.sock"


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
