"""Argument helpers shared by several commands."""

from __future__ import annotations

import argparse
from typing import Any

from wharf.control.api import DaemonApi
from wharf.errors import UsageError


def add_app_argument(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    """An APP argument: an app name, or `all`."""
    parser.add_argument("app", nargs="?" if optional else None, default=None,
                        help="app name, or 'all'")


def app_of(api: DaemonApi, args: dict[str, Any]) -> str | None:
    """The app an argument names (None for all); UsageError if there is no such app."""
    app = args.get("app")
    if app in (None, "all"):
        return None
    if not isinstance(app, str) or app not in api.app_names():
        known = ", ".join(api.app_names()) or "none"
        raise UsageError(f"no app named {app!r}", hint=f"apps: {known}")
    return app


def timeout_of(args: dict[str, Any]) -> float:
    """The `--timeout` in seconds, default 60."""
    value = args.get("timeout", 60.0)
    if not isinstance(value, int | float) or value <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {value!r}")
    return float(value)


def add_timeout_argument(parser: argparse.ArgumentParser,
                         what: str = "the apps to settle") -> None:
    """A `--timeout SECONDS` to wait for `what`."""
    parser.add_argument("--timeout", type=float, default=60.0,
                        help=f"seconds to wait for {what} (default 60)")


def whole_number(args: dict[str, Any], key: str, default: int) -> int:
    """A `--KEY` that must be a whole number >= 0."""
    value = args.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UsageError(f"--{key} must be a whole number >= 0, got {value!r}")
    return value


def add_instance_argument(parser: argparse.ArgumentParser) -> None:
    """An `--instance N`: only that instance of the app (supervisorctl's `web:web_01`)."""
    parser.add_argument("--instance", type=int, default=None, metavar="N",
                        help="only instance N of the app (0 is the first)")


def instance_of(app: str | None, args: dict[str, Any]) -> int | None:
    """The `--instance` asked for, if any; it needs one app."""
    value = args.get("instance")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UsageError(f"--instance must be a whole number >= 0, got {value!r}")
    if app is None:
        raise UsageError("--instance needs an app name, not all")
    return value


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    """A `--progress`: print the events of the change as it goes."""
    parser.add_argument("-p", "--progress", action="store_true",
                        help="print what happens (the events) while waiting")

