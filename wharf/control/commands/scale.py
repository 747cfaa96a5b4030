"""`wharf scale APP N`: run N instances of an app, live. New instances join the pool once they
are ready, and the command returns then (exit 1, saying why, if one is not within --timeout);
removed ones leave the pool first and stop once their requests in flight have finished (up to
the app's drain_timeout, then stop_timeout)."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.config.load import PROXY_APP
from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import (
    add_progress_argument,
    add_timeout_argument,
    app_of,
    timeout_of,
)
from wharf.control.commands._follow import with_progress
from wharf.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """APP, N and --timeout."""
    parser.add_argument("app", help="app name")
    parser.add_argument("count", type=int, help="how many instances to run")
    add_timeout_argument(parser, "new instances to take traffic")
    add_progress_argument(parser)


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """Scale, wait, and return the app's status rows."""
    app = app_of(api, args)
    count = args.get("count")
    if app is None:
        raise UsageError("scale takes one app name")
    if app == PROXY_APP:  # a worker per core at most is useful; proxy.workers says how many
        raise UsageError("the proxy's workers are not scaled by hand",
                         hint="set proxy.workers in the config file and run `wharf reload`")
    if not isinstance(count, int) or not 1 <= count <= 1000:
        raise UsageError(f"the instance count must be 1 to 1000, got {count!r}")
    await with_progress(api, reply, args, app, api.scale_app(app, count, timeout_of(args)))
    return api.status_rows(app)


COMMAND = Command("scale", "run N instances of an app, draining the ones removed",
                  add_arguments, handle)
