"""Read a dotenv file: `KEY=value` lines, `#` comments, optional `export`, quoted values."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")


def parse_env_file(path: Path) -> dict[str, str]:
    """Return the variables of a dotenv file; raise ValueError naming the first bad line."""
    env: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(stripped)
        if not match:
            raise ValueError(f"line {number} is not KEY=value: {stripped[:60]!r}")
        key, value = match.groups()
        if value[:1] in ("'", '"'):
            try:
                parts = shlex.split(value, comments=True)
            except ValueError as exc:
                raise ValueError(f"line {number}: {exc}") from None
            value = parts[0] if parts else ""
        else:
            value = value.split(" #", 1)[0].strip()
        env[key] = value
    return env
