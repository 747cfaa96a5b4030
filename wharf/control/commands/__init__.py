"""One module per command: its arguments, its help, and its handler in the daemon."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from wharf.control.api import DaemonApi, Reply


@dataclass(frozen=True, slots=True)
class Command:
    """A control command, shared by the CLI (arguments, help) and the daemon (handler)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handle: Callable[[DaemonApi, dict[str, Any], Reply], Awaitable[Any]]


def _registry() -> dict[str, Command]:
    from wharf.control.commands import (
        certs,
        down,
        events,
        logs,
        reload,
        restart,
        scale,
        signal,
        start,
        status,
        stop,
        traffic,
        wait,
    )

    commands = [status.COMMAND, start.COMMAND, stop.COMMAND, restart.COMMAND, scale.COMMAND,
                signal.COMMAND, logs.COMMAND, events.COMMAND, reload.COMMAND, wait.COMMAND,
                down.COMMAND, certs.COMMAND, traffic.COMMAND]
    return {c.name: c for c in commands}


COMMANDS = _registry()

__all__ = ["COMMANDS", "Command"]
