"""What an importer makes: the wharf.toml data, and every setting it could not carry over.

An importer never drops a setting silently: each one it does not translate is a `Dropped`
with where it was (file and line, when the format has lines) and why. `notes` are the
translations that changed shape on the way (one Supervisor program that became four apps, a
per-location limit made global), so the user can check them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Where:
    """A place in a source file: a line number, or a key path where the format has none."""

    file: Path
    line: int | None = None
    key: str = ""

    def __str__(self) -> str:
        name = str(self.file)
        try:
            name = str(self.file.relative_to(Path.cwd()))
        except ValueError:
            pass
        place = f"{name}:{self.line}" if self.line is not None else name
        return f"{place}: {self.key}" if self.key else place


@dataclass(frozen=True, slots=True)
class Dropped:
    """A setting not carried over: what it was, where, and why."""

    where: Where
    setting: str
    reason: str

    def __str__(self) -> str:
        where = self.where
        if where.key and self.setting.startswith(where.key):  # "[program:x]" said once
            where = Where(where.file, where.line)
        return f"{where}: {self.setting}: {self.reason}"


@dataclass(slots=True)
class Result:
    """The config an importer built (TOML data, as `tomllib` would read it), and what it left.

    `origins` maps a table of the output ("apps.web", "routes.0") to the source it came from,
    written as a comment above it. `base` is the directory the output will live in: paths
    are written relative to it when they are below it."""

    source: Path
    base: Path
    data: dict[str, Any] = field(default_factory=dict)
    dropped: list[Dropped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)

    def drop(self, where: Where, setting: str, reason: str) -> None:
        """Record a setting that is not carried over."""
        self.dropped.append(Dropped(where, setting, reason))

    def note(self, where: Where, text: str) -> None:
        """Record a translation worth checking."""
        self.notes.append(f"{where}: {text}")

    def path(self, p: Path | str) -> str:
        """`p` as the output should spell it: relative to `base` when below it."""
        p = Path(p)
        if not p.is_absolute():
            return str(p)
        try:
            rel = p.relative_to(self.base)
        except ValueError:
            return str(p)
        return str(rel) if str(rel) != "." else "."

    def app(self, name: str, table: dict[str, Any], origin: Where) -> None:
        """Add `[apps.NAME]`."""
        self.data.setdefault("apps", {})[name] = table
        self.origins[f"apps.{name}"] = str(origin)

    def route(self, table: dict[str, Any], origin: Where) -> None:
        """Add a `[[routes]]` entry."""
        routes = self.data.setdefault("routes", [])
        self.origins[f"routes.{len(routes)}"] = str(origin)
        routes.append(table)

    def sort_dropped(self) -> None:
        """Order by file, then line, as the user will read them."""
        self.dropped.sort(key=lambda d: (str(d.where.file), d.where.line or 0))


def output_base(out: Path | None) -> Path:
    """The directory the output config will be read from (relative paths resolve there)."""
    return (out.absolute().parent if out is not None else Path(os.getcwd()))


def safe_name(name: str) -> str:
    """An app name Wharf accepts (letters, digits, `.`, `_`, `-`, at most 64) made from `name`."""
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "-"
                      for ch in name).strip("-._")[:64]
    return cleaned or "app"
