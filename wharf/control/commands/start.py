"""`wharf start APP|all`: start the instances and wait until they take traffic (RUNNING, and
ready if a route sends to the app), or exit 1 naming each one that failed."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import (
    add_app_argument,
    add_instance_argument,
    add_progress_argument,
    add_timeout_argument,
    app_of,
    instance_of,
    timeout_of,
)
from wharf.control.commands._follow import with_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """APP and --timeout."""
    add_app_argument(parser)
    add_instance_argument(parser)
    add_timeout_argument(parser)
    add_progress_argument(parser)


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """Start, wait, and return the resulting status rows."""
    app = app_of(api, args)
    await with_progress(api, reply, args, app, api.start_app(app, timeout_of(args),
                                                                instance_of(app, args)))
    return api.status_rows(app)


COMMAND = Command("start", "start an app (or all) and wait until it takes traffic",
                  add_arguments, handle)
