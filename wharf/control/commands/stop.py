"""`wharf stop APP|all`: stop the instances (signal, then SIGKILL after stop_timeout)."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import (
    add_app_argument,
    add_instance_argument,
    add_progress_argument,
    app_of,
    instance_of,
)
from wharf.control.commands._follow import with_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """APP."""
    add_app_argument(parser)
    add_instance_argument(parser)
    add_progress_argument(parser)


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """Stop, wait until every process has exited, and return the status rows."""
    app = app_of(api, args)
    await with_progress(api, reply, args, app, api.stop_app(app, instance_of(app, args)))
    return api.status_rows(app)


COMMAND = Command("stop", "stop an app (or all) and wait until it has exited", add_arguments,
                  handle)
