"""`wharf restart APP|all`: restart, and wait until the instances take traffic again.

An app that a route sends to is rolled, as `wharf reload APP` does: new processes start beside
the old ones and take traffic before the old ones are drained and stopped (with a fixed `port`,
one instance at a time, in place), so a restart fails no request. Other apps are stopped and
started."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import (
    add_app_argument,
    add_progress_argument,
    add_timeout_argument,
    app_of,
    timeout_of,
)
from wharf.control.commands._follow import with_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """APP and --timeout."""
    add_app_argument(parser)
    add_timeout_argument(parser)
    add_progress_argument(parser)


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """Restart, wait, and return the resulting status rows."""
    app = app_of(api, args)
    await with_progress(api, reply, args, app, api.restart_app(app, timeout_of(args)))
    return api.status_rows(app)


COMMAND = Command("restart", "restart an app (or all); an app with a route is rolled, with no "
                  "failed request", add_arguments, handle)
