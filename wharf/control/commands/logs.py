"""`wharf logs APP [-f] [-n N]`: the last lines of an app's stdout and stderr, then follow."""

from __future__ import annotations

import argparse
import asyncio
import heapq
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import app_of
from wharf.errors import UsageError
from wharf.supervise.logs import read_tail


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """APP, -n and -f."""
    parser.add_argument("app", help="app name")
    parser.add_argument("-n", "--lines", type=int, default=20, help="lines of history (20)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> None:
    """Send the tail of both logs, merged by time; with follow, send new lines until closed."""
    app = app_of(api, args)
    if app is None:
        raise UsageError("logs takes one app name")
    lines = args.get("lines", 20)
    if not isinstance(lines, int) or lines < 0:
        raise UsageError(f"--lines must be a whole number >= 0, got {lines!r}")
    out_path, err_path = api.log_paths(app)
    out, err = await asyncio.to_thread(lambda: (read_tail(out_path, lines),
                                                read_tail(err_path, lines)))
    tagged = heapq.merge([(line, "out") for line in out], [(line, "err") for line in err])
    for line, stream in list(tagged)[-lines:] if lines else []:
        reply.send({"stream": stream, "data": line.decode(errors="replace")})
    if not args.get("follow"):
        return
    unsubscribe = api.follow_logs(
        app, lambda stream, data: reply.send({"stream": stream,
                                              "data": data.decode(errors="replace")}))
    try:
        await reply.closed()
    finally:
        unsubscribe()


COMMAND = Command("logs", "print an app's output (stdout and stderr, timestamped)",
                  add_arguments, handle)
