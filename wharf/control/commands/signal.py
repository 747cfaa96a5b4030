"""`wharf signal APP|all SIG`: send a signal to the main process of every instance that has one
(Supervisor's `signal`), for apps that act on it, such as gunicorn reloading on HUP. The
signal is a name (HUP, SIGHUP, usr1) or a number; the proxy workers are never sent one."""

from __future__ import annotations

import argparse
import signal as signals
from typing import Any

from wharf.config.converters import signal_number
from wharf.control.api import DaemonApi, Reply
from wharf.control.commands import Command
from wharf.control.commands._args import add_app_argument, app_of
from wharf.errors import ControlError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """APP and SIG."""
    add_app_argument(parser)
    parser.add_argument("signal", help="a signal name (HUP, SIGUSR1) or number")


def signal_of(args: dict[str, Any]) -> int:
    """The signal an argument names; UsageError if it names none."""
    value = args.get("signal")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    try:
        return signal_number(value)
    except ValueError:
        raise UsageError(f"unknown signal {value!r}",
                         hint="give a name such as HUP, SIGUSR1 or TERM, or a number") from None


async def handle(api: DaemonApi, args: dict[str, Any], reply: Reply) -> list[dict[str, Any]]:
    """Check the signal and the app, send, and return one row per process signalled."""
    sig = signal_of(args)
    app = app_of(api, args)
    sent = api.signal_app(app, sig)
    if not sent:
        raise ControlError(f"no instance of {app or 'any app'} is running: nothing to signal",
                           hint=f"start it first: `wharf start {app or 'all'}`")
    return [{"app": name, "instance": index, "pid": pid, "signal": signals.Signals(sig).name}
            for name, index, pid in sent]


COMMAND = Command("signal", "send a signal to every instance of an app (or all)", add_arguments,
                  handle)
