"""`wharf traffic`: the proxy's traffic counters since the daemon started, as JSON (what
`GET /api/traffic` answers and the dashboard turns into rates and quantiles): requests by status
class and duration histograms per route and per backend, retries and queues per service. They
are totals; two readings a few seconds apart give requests/s, error rate and p50/p99."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.observability.traffic import as_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments: the answer is always JSON."""


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> Any:
    """The totals over every proxy worker, live or gone."""
    return as_json(api.traffic())


COMMAND = Command("traffic", "the proxy's traffic counters (JSON): requests, durations, errors",
                  add_arguments, handle)
