"""`wharf logs APP|all [-f] [-n N]`: the last lines of the apps' stdout and stderr, merged by
time, then follow. An app that could not be started, or wrote nothing before it failed, says
why."""

from __future__ import annotations

import argparse
import asyncio
import heapq
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import app_of
from wharf.errors import SupervisorError, UsageError
from wharf.supervise.logs import has_output, read_tail

# States in which an instance has, or is about to have, a process that may still write.
_LIVE_STATES = ("STARTING", "RUNNING", "STOPPING")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """APP (or all), -n and -f."""
    parser.add_argument("app", help="app name, or 'all' for every app's lines by time")
    parser.add_argument("-n", "--lines", type=int, default=20, help="lines of history (20)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> None:
    """Send the tail of the logs, merged by time; with follow, send new lines until closed."""
    if not isinstance(args.get("app"), str):
        raise UsageError("logs takes an app name, or 'all'")
    app = app_of(api, args)
    apps = api.app_names() if app is None else [app]
    lines = args.get("lines", 20)
    if not isinstance(lines, int) or lines < 0:
        raise UsageError(f"--lines must be a whole number >= 0, got {lines!r}")
    files = log_files(api, apps)
    tails, written = await asyncio.to_thread(lambda: (
        [read_tail(path, lines) for path, _ in files], has_output([p for p, _ in files])))
    # Every line starts with its timestamp, and each file is in time order: a merge sorts them.
    tagged = heapq.merge(*([(line, stream) for line in tail]
                           for tail, (_, stream) in zip(tails, files, strict=True)))
    for line, stream in list(tagged)[-lines:] if lines else []:
        reply.send({"stream": stream, "data": line.decode(errors="replace")})
    if app is not None:
        _explain_failure(api, app, written)
    if not args.get("follow"):
        return
    unsubscribe: list[Callable[[], None]] = [
        api.follow_logs(name, lambda stream, data: reply.send(
            {"stream": stream, "data": data.decode(errors="replace")})) for name in apps]
    try:
        await reply.closed()
    finally:
        for stop in unsubscribe:
            stop()


def log_files(api: DaemonApi, apps: list[str]) -> list[tuple[Path, str]]:
    """The stdout and stderr log files of `apps`, each with its stream name."""
    return [(path, stream) for name in apps
            for path, stream in zip(api.log_paths(name), ("out", "err"), strict=True)]


def _explain_failure(api: DaemonApi, app: str, written: bool) -> None:
    """Raise, saying why, if `app` has no process because it could not be started (a spawn
    error: its logs cannot say so), or if it has written nothing and its instances failed
    (an exit before any output): an empty answer would leave a newcomer guessing."""
    rows = [r for r in api.status_rows(app) if r.get("kind") == "instance"]
    if not rows or any(r["state"] in _LIVE_STATES for r in rows):
        return
    failed = [r for r in rows if r.get("reason")]
    never = [r for r in failed if r["reason"].startswith("spawn error")]
    if never:
        message, hint = "it never started", (
            f"fix apps.{app}.command (or its cwd or user) in the config file and run "
            f"`wharf reload`, or `wharf start {app}` once the program is there")
    elif failed and not written:
        message, hint = "it exited before writing anything", \
            "run its command by hand to see why; `wharf status` shows every instance"
    else:
        return
    why = "\n".join(f"  {r['app']}.{r['instance']} {r['state']}: {r['reason']}"
                    for r in never or failed)
    lead = f"{app} has no output: " if not written else f"{app} is not running: "
    raise SupervisorError(f"{lead}{message}\n{why}", hint=hint)


COMMAND = Command("logs", "print an app's output, or every app's (stdout and stderr, "
                  "timestamped)", add_arguments, handle)
