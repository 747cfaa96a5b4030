"""Running one control command, whatever the transport: the Unix socket (the CLI) and the admin
HTTP API both call `execute`, so each command has one implementation.

Errors are WharfErrors turned into a message; anything else is a bug, logged in the daemon and
reported to the client as an internal error, never a crash of the daemon.
"""

from __future__ import annotations

import logging
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import COMMANDS
from wharf.errors import ControlError, WharfError

log = logging.getLogger("wharf.control")


async def execute(api: DaemonApi, name: str, args: Any, reply: Reply) -> dict[str, Any]:
    """Run command `name` with `args`; the final message: {"ok": true, "result": ...}, or
    an error message (see `error_message`). Streamed messages go to `reply` meanwhile."""
    try:
        command = COMMANDS.get(name)
        if command is None:
            raise ControlError(f"unknown command {name!r}")
        if not isinstance(args, dict):
            raise ControlError("args must be a JSON object")
        return {"ok": True, "result": await command.handle(api, args, reply)}
    except WharfError as exc:
        return error_message(exc)
    except Exception as exc:
        log.exception("control command failed")
        return error_message(ControlError(
            f"internal error: {exc!r}", hint="this is a bug in Wharf; the daemon log has "
            "details"), internal=True)


def error_message(exc: WharfError, internal: bool = False) -> dict[str, Any]:
    """The message of a failed command: its text, hint and the CLI's exit code (2 for usage
    and config errors, 1 for the rest); `internal` for a bug in Wharf."""
    message = {"ok": False, "error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    if internal:
        message["internal"] = True
    return message
