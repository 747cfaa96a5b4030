"""Named converters for config values: each takes a raw TOML value and returns a typed one.

Every converter raises ValueError with a message that completes "KEY: ..." for the user.
"""

from __future__ import annotations

import re
import shlex
import signal
from collections.abc import Callable
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 5.6.2: header and cookie names


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def duration(value: Any) -> float:
    """Seconds from a number or a string such as "250ms", "10s", "5m", "1h"."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration like \"10s\", got {_type_name(value)}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    else:
        raise ValueError(f"must be a duration like \"10s\" or \"250ms\", got {value!r}")
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def positive_duration(value: Any) -> float:
    """A duration that must be more than zero (an interval, a timeout)."""
    seconds = duration(value)
    if seconds <= 0:
        raise ValueError(f"must be more than zero, got {value!r}")
    return seconds


def number(minimum: float, maximum: float) -> Callable[[Any], float]:
    """A converter that accepts a number within [minimum, maximum]."""

    def convert(value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"must be a number, got {_type_name(value)}")
        if not minimum <= value <= maximum:
            raise ValueError(f"must be between {minimum:g} and {maximum:g}, got {value}")
        return float(value)

    return convert


def byte_size(value: Any) -> int:
    """Bytes from an integer or a string such as "512MB", "1GiB", "64k" (K = 1000, Ki = 1024)."""
    if isinstance(value, bool):
        raise ValueError(f"must be a size like \"512MB\", got {_type_name(value)}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        unit = m.group(2).lower()
        base = 1024 if "i" in unit else 1000
        power = "kmgt".find(unit[:1]) + 1 if unit[:1] in "kmgt" and unit else 0
        size = int(float(m.group(1)) * base**power)
    else:
        raise ValueError(f"must be a size like \"512MB\" or \"64KiB\", got {value!r}")
    if size <= 0:
        raise ValueError(f"must be greater than 0, got {value!r}")
    return size


def signal_number(value: Any) -> int:
    """A signal number from a name ("TERM", "SIGTERM", "term") or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(signal.Signals(value))
        except ValueError:
            raise ValueError(f"is not a known signal number: {value}") from None
    if isinstance(value, str):
        name = value.strip().upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            return int(signal.Signals[name])
        except KeyError:
            raise ValueError(f"is not a known signal name: {value!r} (try \"TERM\" or \"INT\")") \
                from None
    raise ValueError(f"must be a signal name like \"TERM\", got {_type_name(value)}")


def command_args(value: Any) -> tuple[str, ...]:
    """A command as argv: a string split like a shell would, or a list of strings."""
    if isinstance(value, str):
        try:
            args = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split like a shell command: {exc}") from None
    elif isinstance(value, list) and all(isinstance(a, str) for a in value):
        args = list(value)
    else:
        raise ValueError(f"must be a string or a list of strings, got {_type_name(value)}")
    if not args or not args[0]:
        raise ValueError("must not be empty")
    return tuple(args)


def port_range(value: Any) -> tuple[int, int]:
    """An inclusive (first, last) port range from "20000-29999"."""
    if isinstance(value, str) and (m := re.match(r"^\s*(\d+)\s*-\s*(\d+)\s*$", value)):
        first, last = int(m.group(1)), int(m.group(2))
        if 1 <= first <= last <= 65535:
            return first, last
    raise ValueError(f"must be a port range like \"20000-29999\" within 1-65535, got {value!r}")


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    """A converter that accepts an integer within [minimum, maximum]."""

    def convert(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"must be an integer, got {_type_name(value)}")
        if minimum is not None and value < minimum:
            raise ValueError(f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ValueError(f"must be <= {maximum}, got {value}")
        return value

    return convert


def one_of(*choices: str) -> Callable[[Any], str]:
    """A converter that accepts one of a few strings."""

    def convert(value: Any) -> str:
        if value not in choices:
            listed = ", ".join(f'"{c}"' for c in choices)
            raise ValueError(f"must be one of {listed}, got {value!r}")
        return str(value)

    return convert


def address(value: Any) -> tuple[str, int]:
    """A (host, port) from "host:port", "[::1]:port" or ":port" (all interfaces)."""
    if not isinstance(value, str):
        raise ValueError(f"must be an address like \"127.0.0.1:8080\", got {_type_name(value)}")
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535 or any(
            c.isspace() for c in host):
        raise ValueError(f"must be an address like \"127.0.0.1:8080\", got {value!r}")
    return host or "0.0.0.0", int(port)
