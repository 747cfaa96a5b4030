"""`wharf import`: turn another tool's config into a wharf.toml.

One module per source format fills a `Result` (the config data, and every setting not carried
over, with where it was and why); `toml_writer` writes it. Nothing here starts a process
except `node`, to evaluate a PM2 ecosystem file written in JavaScript.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from wharf.errors import UsageError
from wharf.migrate.result import Dropped, Result, Where

__all__ = ["FORMATS", "Dropped", "Result", "Where", "detect_format", "import_file"]

FORMATS = ("supervisord", "pm2", "procfile", "nginx", "haproxy")


def detect_format(path: Path, text: str) -> str:
    """Which format a file is in, from its name and then its content."""
    name = path.name.lower()
    if name.startswith("procfile"):
        return "procfile"
    if name.startswith(("ecosystem", "pm2")) or path.suffix in (".js", ".cjs", ".mjs"):
        return "pm2"
    if "supervisor" in name:
        return "supervisord"
    if "haproxy" in name:
        return "haproxy"
    if "nginx" in name:
        return "nginx"
    if re.search(r"^\s*\[(program|supervisord|group|include|eventlistener)[:\]]", text, re.M):
        return "supervisord"
    if path.suffix in (".json", ".yaml", ".yml") and re.search(r"[\"']?apps[\"']?\s*:", text):
        return "pm2"
    if re.search(r"^\s*(frontend|backend|listen|defaults)(\s|$)", text, re.M) and "{" not in text:
        return "haproxy"
    if re.search(r"^\s*(server|http|upstream|location|events)\b[^{;]*\{", text, re.M):
        return "nginx"
    if text.strip() and all(re.match(r"^\s*(#.*)?$|^[A-Za-z0-9_-]+:\s*\S", line)
                            for line in text.splitlines()):
        return "procfile"
    raise UsageError(f"{path}: cannot tell which format this is",
                     hint=f"say it with --format ({', '.join(FORMATS)})")


def import_file(path: Path, fmt: str | None, base: Path, env: str | None = None) -> Result:
    """Read `path` (in `fmt`, or the detected format) into a Result whose paths are relative
    to `base`, the directory the output will be read from."""
    path = path.absolute()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    fmt = fmt or detect_format(path, text)
    result = Result(source=path, base=base)
    if env is not None and fmt != "pm2":
        result.note(Where(path), f"--env {env} is for PM2 ecosystem files; ignored")
    importers[fmt](path, text, result, env)
    result.sort_dropped()
    return result


def _supervisord(path: Path, text: str, result: Result, env: str | None) -> None:
    from wharf.migrate.supervisord import import_supervisord

    import_supervisord(path, result)


def _pm2(path: Path, text: str, result: Result, env: str | None) -> None:
    from wharf.migrate.pm2 import import_pm2

    import_pm2(path, text, result, env)


def _procfile(path: Path, text: str, result: Result, env: str | None) -> None:
    from wharf.migrate.procfile import import_procfile

    import_procfile(path, text, result)


def _nginx(path: Path, text: str, result: Result, env: str | None) -> None:
    from wharf.migrate.nginx import import_nginx

    import_nginx(path, result)


def _haproxy(path: Path, text: str, result: Result, env: str | None) -> None:
    from wharf.migrate.haproxy import import_haproxy

    import_haproxy(path, text, result)


importers: dict[str, Callable[[Path, str, Result, str | None], None]] = {
    "supervisord": _supervisord, "pm2": _pm2, "procfile": _procfile, "nginx": _nginx,
    "haproxy": _haproxy,
}
