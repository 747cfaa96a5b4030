"""What a provider is to the registry, and how the registry throttles their bursts.

A provider watches one place where routes and services are declared (a directory, later the
Docker engine, etcd) and, each time that place changes, puts an `Update` into the registry's
queue: its *whole current set* of sources, not a diff (Traefik's providers send their whole
configuration on a channel the same way). The registry keeps the newest update of each
provider, so a provider that emits twice in a row loses nothing, and one that dies leaves its
last set in force. A provider never blocks on the registry and never sees the others.

`Throttle` is the sans-IO part of coalescing: a change is published at once if nothing was
published in the last `window` seconds, else at the end of that window, with every change
that came meanwhile (Traefik's providersThrottleDuration, 2 s by default; Wharf's 50 ms keep a
file edit's change-to-serving time low while a burst of edits costs one snapshot).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from wharf.registry.table import Issue, Source

if TYPE_CHECKING:
    from wharf.config.model import AppConfig

COALESCE_WINDOW = 0.05  # seconds: at most 20 snapshots a second from the providers


@dataclass(frozen=True, slots=True)
class Update:
    """One provider's current set: its sources in precedence order, and what it refused."""

    provider: str  # "file"; later "docker", "etcd"
    sources: tuple[Source, ...] = ()
    # kind "invalid": that source's last good content stays; "unreachable": the provider
    # cannot read its place (etcd), its last known set stays
    issues: tuple[Issue, ...] = ()
    known: tuple[str, ...] = ()  # every source it has, good or not (for `status`)


class Provider(Protocol):
    """A source of routes and services that changes while Wharf runs."""

    name: str

    async def run(self, updates: asyncio.Queue[Update]) -> None:
        """Put the current set into `updates` at once, then after every change, until
        cancelled. Errors of the watched place are reported as issues, never raised."""
        ...


@runtime_checkable
class Rereadable(Protocol):
    """A provider that can be read at once, without waiting for a change (the file one):
    `wharf check --providers` reads it, and a reload has it check its sources again."""

    def scan(self) -> Update:
        """The current set, read now."""
        ...

    def reconfigure(self, apps: Mapping[str, AppConfig]) -> None:
        """The config's apps changed: check every source again at the next scan."""
        ...


@runtime_checkable
class Readable(Protocol):
    """A provider whose place is read over the network (etcd): `wharf check --providers`
    awaits one read of it."""

    async def read(self) -> Update:
        """The current set, read now (unreachable: an issue saying so)."""
        ...


class Throttle:
    """When to publish a change: leading edge, then at most once per `window`."""

    def __init__(self, window: float = COALESCE_WINDOW) -> None:
        self.window = window
        self._last = float("-inf")  # when the last publish was
        self._due = False  # a publish is scheduled

    def __repr__(self) -> str:
        return f"<Throttle window={self.window}s due={self._due}>"

    def change(self, now: float) -> float | None:
        """A change came at `now`: in how many seconds to publish it (0: now), or None if a
        publish is already due and will carry it."""
        if self._due:
            return None
        self._due = True
        return max(0.0, self._last + self.window - now)

    def published(self, now: float) -> None:
        """The due publish happened at `now`."""
        self._due = False
        self._last = now


# A provider that lost what it watches tries again after 0.1 s, then twice as long each time
# up to 5 s (etcd's own clients back off from 50 ms up to a few seconds, Traefik's providers
# use an exponential backoff too); each wait is drawn in [d/2, d] ("equal jitter") so that N
# hosts that lost one etcd together do not come back in step.
RETRY_FIRST = 0.1
RETRY_MAX = 5.0


def since_text(since: float) -> str:
    """A moment as `status` shows it (local time, as the daemon's log and events)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))


class Backoff:
    """How long to wait before the next attempt to reach a lost source (sans-IO: the random
    draw is passed in)."""

    def __init__(self, first: float = RETRY_FIRST, cap: float = RETRY_MAX) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def __repr__(self) -> str:
        return f"<Backoff next={self._next}s cap={self.cap}s>"

    def delay(self, draw: float) -> float:
        """The wait before the next attempt, for a `draw` in [0, 1); doubles the next one."""
        current, self._next = self._next, min(self.cap, self._next * 2)
        return current * (0.5 + draw / 2)

    def reset(self) -> None:
        """It answered again: the next loss starts from the first wait."""
        self._next = self.first
