"""`wharf down`: stop every app gracefully, then the daemon exits."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> None:
    """Begin the shutdown; the client waits for the daemon to go away."""
    api.request_shutdown()


COMMAND = Command("down", "stop every app and the daemon", add_arguments, handle)
