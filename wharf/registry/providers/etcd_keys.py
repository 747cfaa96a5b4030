"""The etcd provider's state: keys in, sources out. Pure code: no sockets, time passed in.

Theory of operation. Under the prefix (`/wharf` by default), each key of `routes/` holds one
JSON object with the keys of a `[[routes]]` table and each key of `services/` one with the
keys of a `[services.NAME]` table, NAME being the rest of the key:

    /wharf/routes/api      {"host": "api.example.com", "service": "api"}
    /wharf/services/api    {"servers": ["10.0.0.5:8080"], "health": {"path": "/healthz"}}

Every key is a source of its own (named `etcd:/wharf/routes/api`), checked by the code that
checks `wharf.toml` (every problem, with its key path inside the value). A value that does
not pass is reported and that key's last good value stays in force; a deleted key takes its
route or service with it. Keys elsewhere under the prefix (`[cluster]` writes
`cluster/...` there) are not this provider's and are ignored without a word.

`EtcdKeys` is fed a whole read (`load`, at a revision) or a watch's events (`apply`), and
told when etcd stopped answering (`lost`) and answered again (`reached`); `update()` is the
provider's current set at any time: while etcd is unreachable, the last known one, plus an
`unreachable` issue saying since when.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wharf.clients.etcd import Event, KeyValue
from wharf.config.dynamic import check_dynamic
from wharf.config.model import AppConfig
from wharf.registry.provider import Update, since_text
from wharf.registry.table import Issue, Source

log = logging.getLogger("wharf.providers")

ROUTES = "routes/"
SERVICES = "services/"


@dataclass(slots=True)
class _Key:
    value: bytes = b""  # the newest value seen
    good: Source | None = None  # its last value that passed
    issues: tuple[Issue, ...] = ()


def _inner(path: str, outer: str) -> str:
    """A problem's key path inside the value (`routes[0].path` -> `path`)."""
    if path == outer:
        return ""
    return path[len(outer) + 1:] if path.startswith(outer + ".") else path


def check_value(source: str, kind: str, name: str, value: bytes, base: Path,
                apps: Mapping[str, AppConfig]) -> tuple[Source | None, tuple[Issue, ...]]:
    """One key's value (`kind` is ROUTES or SERVICES, `name` the rest of its key) as a
    source, or None and what is wrong with it."""
    table = "[[routes]]" if kind == ROUTES else "[services.NAME]"

    def refused(key: str, message: str) -> tuple[None, tuple[Issue, ...]]:
        return None, (Issue(source, key, message, "invalid"),)

    if not name:
        return refused("", f"the key needs a name after {kind}")
    try:
        data: Any = json.loads(value)
    except ValueError as exc:
        return refused("", f"is not JSON: {exc}")
    if not isinstance(data, dict):
        return refused("", f"must be a JSON object with the keys of a {table} table, got "
                       f"{type(data).__name__ if data is not None else 'null'}")
    if kind == ROUTES:
        dynamic, problems = check_dynamic({"routes": [data]}, base, apps)
        outer = "routes[0]"
    else:
        dynamic, problems = check_dynamic({"services": {name: data}}, base, apps)
        outer = f"services.{name}"
    if dynamic is None:
        return None, tuple(Issue(source, _inner(p.path, outer), p.message, "invalid")
                           for p in problems)
    return Source(source, dynamic.routes, dynamic.services), ()


class EtcdKeys:
    """The provider's keys, as last read or watched, and whether etcd answers."""

    def __init__(self, prefix: str, endpoints: Iterable[str], base: Path,
                 apps: Mapping[str, AppConfig]) -> None:
        self.prefix = prefix.rstrip("/") + "/"  # every key watched starts with it
        self.connection = ",".join(endpoints)  # the source `status` shows etcd's state on
        self.base = base  # relative `static` directories are in it (the config's directory)
        self.apps = apps
        self.revision = 0  # the newest revision seen (watch from the one after)
        self.loaded = False  # a whole read happened
        self.unreachable_since: float | None = None
        self._error = ""
        self._keys: dict[str, _Key] = {}

    def __repr__(self) -> str:
        state = f" unreachable since {since_text(self.unreachable_since)}" \
            if self.unreachable_since is not None else ""
        return f"<EtcdKeys {self.prefix} keys={len(self._keys)} rev={self.revision}{state}>"

    def _kind(self, key: str) -> tuple[str, str] | None:
        rest = key[len(self.prefix):] if key.startswith(self.prefix) else None
        for kind in (ROUTES, SERVICES):
            if rest is not None and rest.startswith(kind):
                return kind, rest[len(kind):]
        return None

    def _put(self, key: str, value: bytes) -> bool:
        kind = self._kind(key)
        if kind is None:
            return False
        entry = self._keys.setdefault(key, _Key())
        if entry.value == value and (entry.good or entry.issues):
            return False
        entry.value = value
        source = f"etcd:{key}"
        good, issues = check_value(source, *kind, value, self.base, self.apps)
        if good is not None:
            if entry.issues:
                log.info("wharf: %s: good again", source)
            entry.good = good
        elif issues != entry.issues:
            kept = "its last good value stays in force" if entry.good else "it is not in force"
            log.warning("wharf: %s: refused (%s):\n%s", source, kept,
                        "\n".join(f"  {i.key}: {i.message}" if i.key else f"  {i.message}"
                                  for i in issues))
        entry.issues = issues
        return True

    def _delete(self, key: str) -> bool:
        if self._keys.pop(key, None) is None:
            return False
        what = "route" if key.startswith(self.prefix + ROUTES) else "service"
        log.info("wharf: etcd:%s: deleted; its %s is gone", key, what)
        return True

    def load(self, revision: int, kvs: Iterable[KeyValue]) -> None:
        """A whole read of the prefix at `revision`: it replaces what was known."""
        kvs = [kv for kv in kvs if self._kind(kv.key) is not None]
        present = {kv.key for kv in kvs}
        for key in [k for k in self._keys if k not in present]:
            self._delete(key)
        for kv in kvs:
            self._put(kv.key, kv.value)
        self.revision = revision
        self.loaded = True

    def apply(self, events: Iterable[Event]) -> bool:
        """A watch's batch of events, in revision order; True if a route or service changed
        (events of keys that are not this provider's only move the revision on)."""
        changed = False
        for event in events:
            self.revision = max(self.revision, event.kv.mod_revision)
            if event.kind == "delete":
                changed |= self._delete(event.kv.key)
            else:
                changed |= self._put(event.kv.key, event.kv.value)
        return changed

    def reconfigure(self, apps: Mapping[str, AppConfig]) -> None:
        """The config's apps changed: check every value again (what `app = ...` may name)."""
        self.apps = apps
        for key, entry in self._keys.items():
            value, entry.value, entry.issues = entry.value, b"", ()
            self._put(key, value)

    def lost(self, now: float, error: str) -> bool:
        """etcd did not answer at `now` (wall clock); True if it answered until then."""
        if self.unreachable_since is not None:
            return False
        self.unreachable_since, self._error = now, error
        return True

    def reached(self) -> float | None:
        """etcd answered: since when it had been unreachable (None if it had not been)."""
        since, self.unreachable_since, self._error = self.unreachable_since, None, ""
        return since

    def issues(self) -> list[Issue]:
        """Every refused value, and etcd's being unreachable."""
        issues = [i for key in sorted(self._keys) for i in self._keys[key].issues]
        if self.unreachable_since is not None:
            kept = "the last known routes and services stay in force" if self.loaded \
                else "nothing was read from it yet"
            issues.append(Issue(self.connection, "", f"unreachable since "
                                f"{since_text(self.unreachable_since)} ({self._error}); "
                                f"{kept}", "unreachable"))
        return issues

    def update(self) -> Update:
        """The provider's current set: the good sources in key order, what was refused."""
        keys = sorted(self._keys)
        known = [f"etcd:{k}" for k in keys]
        if self.unreachable_since is not None:
            known.append(self.connection)
        return Update("etcd", tuple(g for k in keys if (g := self._keys[k].good) is not None),
                      tuple(self.issues()), tuple(known))
