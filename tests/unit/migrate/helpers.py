"""Run an importer on text written to a temporary file."""

from __future__ import annotations

import textwrap
from pathlib import Path

from wharf.migrate import Result, import_file


def imported(tmp_path: Path, name: str, text: str, fmt: str | None = None,
             env: str | None = None) -> Result:
    """Write `text` to tmp_path/name and import it, paths relative to tmp_path."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return import_file(path, fmt, tmp_path, env)


def dropped(result: Result) -> list[tuple[int | None, str]]:
    """(line, setting) of every item not carried over."""
    return [(d.where.line, d.setting) for d in result.dropped]
