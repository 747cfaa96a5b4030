"""`wharf reload [APP]`: with APP, replace its instances one by one with no drop in capacity
(a new one must be ready before an old one is drained and stopped; one that is not stops the
reload, exit 1). Without APP, re-read wharf.toml and apply only the difference; a bad file
changes nothing (exit 2)."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import (
    add_progress_argument,
    add_timeout_argument,
    app_of,
    timeout_of,
)
from wharf.control.commands._follow import with_progress


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """An optional APP, and --timeout for each new instance to become ready."""
    parser.add_argument("app", nargs="?", default=None, help="app to roll (default: re-read "
                        "the config file)")
    add_timeout_argument(parser)
    add_progress_argument(parser)


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """Roll one app, or reload the config, and say what changed."""
    app = app_of(api, args)
    if app is not None:
        await with_progress(api, reply, args, app, api.roll_app(app, timeout_of(args)))
        return {"rolled": [app]}
    result = await with_progress(api, reply, args, None, api.reload())
    return asdict(result)


COMMAND = Command("reload", "roll an app's instances, or re-read the config file",
                  add_arguments, handle)
