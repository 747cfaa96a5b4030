"""A small TOML writer for imported configs: tables in Wharf's order, a comment naming the
source above each one.

Why not tomli-w: it cannot write comments, and the comments (which line of which file each
app or route came from) are what lets a user review an import. The values an importer makes
are few in kind: strings, numbers, booleans, lists, and tables of those.
"""

from __future__ import annotations

import json
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
# The order of the reference (docs/configuration.md).
_TOP = ("daemon", "proxy", "tls", "apps", "routes")


def key(name: str) -> str:
    """A TOML key: bare when it can be, else a quoted string."""
    return name if _BARE_KEY.match(name) else string(name)


def string(text: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def value(v: Any) -> str:
    """One inline TOML value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(data: dict[str, Any], origins: dict[str, str] | None = None) -> str:
    """`data` as TOML text; `origins` maps "apps.web" or "routes.0" to a comment."""
    origins = origins or {}
    lines: list[str] = []
    order = [k for k in _TOP if k in data] + [k for k in data if k not in _TOP]
    scalars = {k: data[k] for k in order if not _is_table(data[k]) and not _is_tables(data[k])}
    _scalars(lines, scalars)
    for name in order:
        v = data[name]
        if _is_tables(v):
            for i, item in enumerate(v):
                _header(lines, f"[[{key(name)}]]", origins.get(f"{name}.{i}"))
                _scalars(lines, item)
        elif name == "apps" and isinstance(v, dict):
            for app, table in v.items():
                _table(lines, f"apps.{key(app)}", table, origins.get(f"apps.{app}"))
        elif _is_table(v):
            _table(lines, key(name), v, origins.get(name))
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table(v: Any) -> bool:
    return isinstance(v, dict)


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _header(lines: list[str], header: str, origin: str | None) -> None:
    lines.append("")
    if origin:
        lines.append(f"# from {origin}")
    lines.append(header)


def _table(lines: list[str], name: str, table: dict[str, Any], origin: str | None) -> None:
    """`[name]` with its values; sub-tables (`[proxy.timeouts]`, `[apps.x.env]`) after."""
    _header(lines, f"[{name}]", origin)
    _scalars(lines, {k: v for k, v in table.items() if not _is_table(v)})
    for sub, v in table.items():
        if _is_table(v):
            _table(lines, f"{name}.{key(sub)}", v, None)


def _scalars(lines: list[str], values: dict[str, Any]) -> None:
    lines.extend(f"{key(k)} = {value(v)}" for k, v in values.items())
