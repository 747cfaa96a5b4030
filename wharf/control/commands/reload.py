"""`wharf reload`: re-read wharf.toml and apply only the difference; a bad file changes nothing."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No arguments."""


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> dict[str, list[str]]:
    """Reload and say what changed."""
    return asdict(await api.reload())


COMMAND = Command("reload", "re-read the config file and apply what changed", add_arguments,
                  handle)
