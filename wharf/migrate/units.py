"""Durations, sizes and addresses in the spellings of other tools, turned into Wharf's."""

from __future__ import annotations

import re

_PARTS = re.compile(r"(\d+(?:\.\d+)?)([a-zA-Z]*)")
# nginx's units (ngx_parse_time), HAProxy's (parse_time_err), PM2's.
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0,
            "w": 7 * 86400.0, "M": 30 * 86400.0, "y": 365 * 86400.0}


def parse_time(text: str, default_unit: str) -> float:
    """Seconds from "1m30s", "500ms", "10" (in `default_unit`); ValueError if not a time."""
    text = text.strip()
    pos, total = 0, 0.0
    for m in _PARTS.finditer(text):
        if m.start() != pos:
            break
        unit = m.group(2) or default_unit
        if unit not in _SECONDS:
            raise ValueError(f"unknown time unit {unit!r} in {text!r}")
        total += float(m.group(1)) * _SECONDS[unit]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"not a time: {text!r}")
    return total


def duration(seconds: float) -> str | float:
    """Wharf's spelling of a duration: "10s", "5m", "1h", "250ms", or seconds."""
    ms = round(seconds * 1000, 6)
    if ms != int(ms):
        return seconds
    ms = int(ms)
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    if s and s % 3600 == 0:
        return f"{s // 3600}h"
    if s and s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def size_1024(text: str) -> str | int:
    """A size whose K, M, G mean powers of 1024 (nginx, Supervisor, PM2): "10m" -> "10MiB"."""
    m = re.fullmatch(r"\s*(\d+)\s*([kKmMgG])?[bB]?\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r}")
    number, unit = int(m.group(1)), m.group(2)
    return f"{number}{unit.upper()}iB" if unit else number


def listen_address(host: str, port: int) -> str:
    """Wharf's listen spelling: ":80" for every interface, "[::]:80" for IPv6."""
    if host in ("", "*", "0.0.0.0"):
        return f":{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_address(text: str, default_port: int | None = None) -> tuple[str, int] | None:
    """("host", port) from "host:port", "[::1]:port", "*:80", ":80", "80"; None if not one."""
    text = text.strip()
    if text.isdigit():
        return "", int(text)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" not in text and default_port is not None:
        host, port_text = text, str(default_port)
    else:
        return None
    if not port_text and default_port is not None:
        port_text = str(default_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        return None
    return host, int(port_text)
