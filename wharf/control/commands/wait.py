"""`wharf wait [APP]`: wait until every instance has started and takes traffic, or has failed
(each app's start window bounds the wait: its retries with their backoff, readiness, health
checks). Exit 1 naming every failure. `wharf up -d` ends with it."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import add_app_argument, app_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """An optional APP (default: all)."""
    add_app_argument(parser, optional=True)


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """Wait, and return the status rows."""
    app = app_of(api, args)
    await api.wait_started(app)
    return api.status_rows(app)


COMMAND = Command("wait", "wait until every app takes traffic or has failed (exit 1 if one "
                  "failed)", add_arguments, handle)
