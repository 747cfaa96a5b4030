"""When to roll an app by itself: a watched file changed (`watch`), a cron time came
(`cron_restart`). Pure: times are numbers passed in.

Theory of operation: a `RollGate` per app turns a stream of requests into rolls. A change asks
for a roll `quiet` seconds after it, and each later change moves that time on (a debounce: an
editor's save, a `git checkout` of 200 files, a build writing its output, give one roll). A
cron time asks for one now. Never more than one roll at a time: what is asked during a roll is
kept, and gives one more roll after it (the files changed under the roll may not be in the new
processes), never a queue of them. PM2's watch restarts once per change, and a restart that
rewrites watched files (logs, caches) restarts again: its restart storms are what this avoids,
with the debounce here and the ignore rules of `ignored`.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import PurePath

# Always ignored under a watched path: version control, caches and dependency trees (the set
# watchfiles' DefaultFilter ignores, which uvicorn's --reload uses too), and editors' temp files.
DEFAULT_IGNORES = (".git", ".hg", ".svn", ".tox", ".venv", "__pycache__", "site-packages",
                   ".idea", "node_modules", ".mypy_cache", ".pytest_cache", ".hypothesis",
                   ".ruff_cache", "*.py[cod]", "*.sw?", "*~", ".#*", "#*#", ".DS_Store")


class RollGate:
    """Debounces the roll requests of one app; at most one roll at a time."""

    def __init__(self, quiet: float) -> None:
        self.quiet = quiet
        self._due: float | None = None  # when the next roll should start
        self.rolling = False
        self.rolls = 0  # rolls started, for statistics and tests

    def __repr__(self) -> str:
        return f"<RollGate due={self._due} rolling={self.rolling} rolls={self.rolls}>"

    def changed(self, now: float) -> None:
        """A watched file changed at `now`: roll once nothing has changed for `quiet`."""
        self._due = now + self.quiet

    def fire(self, now: float) -> None:
        """Roll now (a cron time came), or as soon as the roll under way is over."""
        self._due = now if self._due is None else min(self._due, now)

    def deadline(self) -> float | None:
        """When `take` may say yes next (None: not until another request, or the roll
        under way ends)."""
        return None if self.rolling else self._due

    def take(self, now: float) -> bool:
        """True if a roll should start now; the caller calls `finished` after it."""
        if self.rolling or self._due is None or now < self._due:
            return False
        self._due = None
        self.rolling = True
        self.rolls += 1
        return True

    def finished(self) -> None:
        """The roll is over (done or failed); what was asked meanwhile is due."""
        self.rolling = False


def ignored(path: str, roots: Iterable[str], patterns: Iterable[str],
            excluded: Iterable[str] = ()) -> bool:
    """Whether a change at `path` (absolute) is to be ignored: it is under one of `excluded`
    (the app's own log files and the daemon's state directory), or a part of its path below
    the watched root matches a pattern (`node_modules` ignores the tree, `*.pyc` the files;
    a pattern with a `/`, like `build/*.js`, is matched against the path below the root)."""
    p = PurePath(path)
    if any(p == PurePath(e) or PurePath(e) in p.parents for e in excluded):
        return True
    rel = _relative(p, roots)
    parts = rel.parts
    text = rel.as_posix()
    for pattern in patterns:
        if "/" in pattern:
            if fnmatchcase(text, pattern) or fnmatchcase(text, pattern + "/*"):
                return True
        elif any(fnmatchcase(part, pattern) for part in parts):
            return True
    return False


def _relative(path: PurePath, roots: Iterable[str]) -> PurePath:
    for root in roots:
        r = PurePath(root)
        if path == r:
            return PurePath(path.name)
        if r in path.parents:
            return path.relative_to(r)
    return path
