"""The file provider: the routes and services of every `*.toml` in a directory, live.

Each file is a source of its own, in name order (`10-api.toml` before `20-web.toml`, as in
conf.d directories), named by its path as the user wrote it (`conf.d/api.toml`). A file that
does not pass the checks is reported (file, key path, reason) and its last good content stays
in force; a file that goes away takes its routes and services with it.

`scan` is the whole of the work and does no waiting: it looks at the directory, reads again
the files whose size, mtime or inode changed, and returns the provider's current set. `run`
calls it once, then after each change that inotify reports (through `watchfiles`, imported
only when a `[providers.file]` is configured), and every POLL seconds as a safety net (a
directory that does not exist yet, a change inotify missed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from wharf.config.dynamic import load_dynamic
from wharf.config.model import AppConfig
from wharf.registry.provider import Update
from wharf.registry.table import Issue, Source

log = logging.getLogger("wharf.providers")

POLL = 1.0  # seconds between looks that need no event (the task's "a poll of at most 1 s")
# watchfiles groups events: it yields once no new event came for STEP ms (at most DEBOUNCE).
STEP_MS = 10
DEBOUNCE_MS = 200

Stamp = tuple[int, int, int]  # (size, mtime_ns, inode)


@dataclass(slots=True)
class _File:
    stamp: Stamp | None = None
    good: Source | None = None  # its last content that passed
    issues: tuple[Issue, ...] = ()


class FileProvider:
    """Watches one directory of `*.toml` files."""

    name = "file"

    def __init__(self, directory: Path, apps: Mapping[str, AppConfig],
                 shown_from: Path | None = None) -> None:
        self.directory = directory
        self.apps = apps  # what `app = ...` may name (the config's apps)
        self._shown_from = shown_from  # file names are shown relative to it (the config's dir)
        self._files: dict[Path, _File] = {}

    def __repr__(self) -> str:
        return f"<FileProvider {self.directory} files={len(self._files)}>"

    def reconfigure(self, apps: Mapping[str, AppConfig]) -> None:
        """The config's apps changed: every file is checked again at the next scan."""
        self.apps = apps
        for entry in self._files.values():
            entry.stamp = None

    def shown(self, path: Path) -> str:
        """A file's name as `status` and the log show it."""
        if self._shown_from is not None:
            try:
                return str(path.relative_to(self._shown_from))
            except ValueError:
                pass
        return str(path)

    def scan(self) -> Update:
        """The current set: read what changed since the last scan."""
        try:
            if not self.directory.is_dir():
                raise FileNotFoundError(2, "no such directory")
            paths = sorted(p for p in self.directory.glob("*.toml") if p.is_file())
        except OSError as exc:
            self._files.clear()
            missing = Issue(self.shown(self.directory), "", f"cannot read the directory: "
                            f"{exc.strerror}", "invalid")
            return Update(self.name, (), (missing,), (missing.source,))
        for gone in [p for p in self._files if p not in paths]:
            log.info("wharf: %s: removed; its routes and services are gone", self.shown(gone))
            del self._files[gone]
        for path in paths:
            self._read(path, self._files.setdefault(path, _File()))
        files = [self._files[p] for p in paths]
        return Update(self.name, tuple(f.good for f in files if f.good is not None),
                      tuple(i for f in files for i in f.issues),
                      tuple(self.shown(p) for p in paths))

    def _read(self, path: Path, entry: _File) -> None:
        try:
            st = path.stat()
        except OSError:
            return  # gone meanwhile: the next scan drops it
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        if stamp == entry.stamp:
            return
        entry.stamp = stamp
        name = self.shown(path)
        dynamic, problems = load_dynamic(path, self.apps)
        if dynamic is not None:
            if entry.issues:
                log.info("wharf: %s: good again", name)
            entry.good = Source(name, dynamic.routes, dynamic.services)
            entry.issues = ()
            return
        entry.issues = tuple(Issue(name, p.path, p.message, "invalid") for p in problems)
        kept = "its last good content stays in force" if entry.good else "it is not in force"
        log.warning("wharf: %s: refused (%s):\n%s", name, kept,
                    "\n".join(f"  {p}" for p in problems))

    async def run(self, updates: asyncio.Queue[Update]) -> None:
        """Put the current set into `updates`, then again after every change."""
        from watchfiles import awatch

        while True:
            updates.put_nowait(self.scan())
            if not self.directory.is_dir():
                await asyncio.sleep(POLL)
                continue
            try:
                async for _ in awatch(self.directory, step=STEP_MS, debounce=DEBOUNCE_MS,
                                      rust_timeout=int(POLL * 1000), yield_on_timeout=True,
                                      recursive=False):
                    updates.put_nowait(self.scan())
                    if not self.directory.is_dir():
                        break
            except (OSError, RuntimeError) as exc:  # the directory went away under inotify
                log.warning("wharf: watching %s: %s", self.directory, exc)
                await asyncio.sleep(POLL)

