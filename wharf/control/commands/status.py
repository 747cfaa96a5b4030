"""`wharf status [APP] [--json]`: every instance (state, pid, uptime, restarts, CPU, RSS), then
every backend of every route (health, ejection, requests in flight, last error)."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import add_app_argument, app_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """APP and --json."""
    add_app_argument(parser, optional=True)
    parser.add_argument("--json", action="store_true", help="print a JSON list (stable)")


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """The status rows of one app or all."""
    return api.status_rows(app_of(api, args), backends=True)


COMMAND = Command("status", "show the state of every app instance", add_arguments, handle)
