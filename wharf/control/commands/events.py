"""`wharf events [-n N] [-f] [--json]`: what happened in the daemon, one line each (instances
started, exited, ready, drained; backends up, down, ejected; reload steps), oldest first; with
-f, keep printing new ones. `--json` prints one JSON object a line (a stable interface)."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import whole_number
from wharf.control.commands._follow import event_message, follow_events


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """-n, -f, --json and --after."""
    parser.add_argument("-n", "--lines", type=int, default=50,
                        help="how many past events (50; the daemon keeps the last 1000)")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    parser.add_argument("--json", action="store_true", help="one JSON object a line (stable)")
    parser.add_argument("--after", type=int, default=0, metavar="SEQ",
                        help="only events after this sequence number (to resume)")


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> None:
    """Send the recent events; with follow, every new one until the client goes away."""
    lines = whole_number(args, "lines", 50)
    after = whole_number(args, "after", 0)
    as_json = bool(args.get("json"))
    subscription = api.events.subscribe() if args.get("follow") else None
    for event in api.events.recent(lines, after):  # no await since subscribing: none missed
        reply.send(event_message(event, as_json))
    if subscription is not None:
        await follow_events(subscription, reply, lambda e: event_message(e, as_json))


COMMAND = Command("events", "print what happened: instances started, exited, ready; backends "
                  "up, down, ejected; reloads", add_arguments, handle)
