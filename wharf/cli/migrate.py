"""`wharf import FILE`: print (or write) the wharf.toml made from another tool's config, then
on stderr what changed shape, what was not carried over and why, and what `wharf check` will
say of the result on this machine. Client-side only: no daemon is involved."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from wharf import __version__
from wharf.errors import ConfigError, UsageError


def import_command(sources: list[Path], out: Path | None, fmt: str | None, env: str | None,
                   force: bool) -> int:
    """Import `sources` into one config; exit 0 once it is written, whatever was left."""
    from wharf.migrate import import_file
    from wharf.migrate.merge import merge
    from wharf.migrate.result import output_base
    from wharf.migrate.toml_writer import dumps

    if out is not None and out.exists() and not force:
        raise UsageError(f"{out} exists", hint="choose another -o, or add --force to replace it")
    if fmt is not None and len(sources) > 1:
        raise UsageError("--format names the format of one file",
                         hint="with several files, each one's format is guessed from its name "
                         "and content: import a file of an unusual name on its own")
    base = output_base(out)
    results = [import_file(source, fmt, base, env) for source in sources]
    result = results[0] if len(results) == 1 else merge(results, base)
    names = ", ".join(str(r.source) for r in results)
    text = (f"# Imported from {names} by `wharf import` (wharf {__version__}).\n"
            "# What was not carried over is listed on stderr; see docs/migration.md.\n\n"
            + dumps(result.data, result.origins))
    check = check_problems(text, out if out is not None else result.base / "wharf.toml")
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        print(f"wharf: wrote {out}", file=sys.stderr)
    report(result.notes, [str(d) for d in result.dropped], check)
    return 0


def check_problems(text: str, path: Path) -> list[str]:
    """What `wharf check` would report of `text` read from `path`: usually paths and users
    of the machine the source came from."""
    from wharf.config.load import config_from_data

    try:
        config = config_from_data(tomllib.loads(text), path.absolute())
    except ConfigError as exc:
        return [str(p) for p in exc.problems]
    return [f"warning: {w}" for w in config.warnings]


def report(notes: list[str], dropped: list[str], check: list[str]) -> None:
    """The three lists, on stderr, each under a heading."""
    for heading, lines in (("translated with changes", notes),
                           ("not carried over", dropped),
                           ("`wharf check` will report, on this machine", check)):
        if lines:
            print(f"wharf import: {heading} ({len(lines)}):", file=sys.stderr)
            for line in lines:
                print(f"  {line}", file=sys.stderr)
    if not dropped:
        print("wharf import: every setting was carried over", file=sys.stderr)
