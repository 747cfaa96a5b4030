"""Rolls that apps ask for by themselves: `watch` (a file changed) and `cron_restart`.

Each app with either has a `RollGate` (the decisions: debounce, one roll at a time) and up to
three tasks: a watcher, a cron timer, and a runner that rolls when the gate says so, through
the daemon's `roll` (the same as `wharf restart APP`: a routed app is rolled with no request
lost, another is restarted).

Files are watched with watchfiles (inotify through the Rust `notify` crate, as uvicorn's
--reload does), imported only when an app has `watch`. Its thread checks a stop event every
STEP_MS, so closing takes that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from wharf.config.cron import CronSchedule
from wharf.config.model import AppConfig
from wharf.supervise.trigger import DEFAULT_IGNORES, RollGate, ignored

log = logging.getLogger("wharf")

STEP_MS = 50  # watchfiles yields once no change came for this long (the gate adds watch_delay)
CRON_LOOK = 30.0  # seconds: the wall clock may be set meanwhile, so look again this often
# Seconds added to the wall clock for cron times: a hidden hook for the integration test.
CLOCK_OFFSET_ENV = "_WHARF_TEST_CLOCK_OFFSET"

Roll = Callable[[str, str], Awaitable[None]]  # (app, why)


@dataclass(slots=True)
class _AppTrigger:
    """The gate and tasks of one app."""

    key: tuple[object, ...]
    gate: RollGate
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    why: str = ""
    runner: asyncio.Task[None] | None = None
    watcher: asyncio.Task[None] | None = None  # ends by itself once `stop` is set
    timer: asyncio.Task[None] | None = None


def _key(app: AppConfig) -> tuple[object, ...]:
    return (app.watch, app.watch_ignore, app.watch_delay, app.cron_restart, app.cwd)


class Triggers:
    """The watchers and cron timers of every app."""

    def __init__(self, roll: Roll, excluded: Callable[[AppConfig], list[Path]]) -> None:
        self._roll = roll
        self._excluded = excluded  # paths never watched: logs, the state directory
        self._apps: dict[str, _AppTrigger] = {}
        self._offset = float(os.environ.get(CLOCK_OFFSET_ENV, "0") or 0)

    def __repr__(self) -> str:
        return f"<Triggers {self._apps}>"

    def rolls(self, app: str) -> int:
        """How many rolls an app has asked for by itself."""
        trigger = self._apps.get(app)
        return trigger.gate.rolls if trigger else 0

    def sync(self, apps: Mapping[str, AppConfig]) -> None:
        """Watch and time what `apps` ask for; stop what they no longer do."""
        for name in list(self._apps):
            if name not in apps or self._apps[name].key != _key(apps[name]):
                self._close(self._apps.pop(name))
        for name, app in apps.items():
            if name not in self._apps and (app.watch or app.cron_restart):
                self._apps[name] = self._open(app)

    async def close(self) -> None:
        """Stop every watcher and timer (a roll under way runs to its end)."""
        closing = list(self._apps.values())
        self._apps.clear()
        for trigger in closing:
            self._close(trigger)
        ending = [t for trigger in closing for t in (trigger.watcher, trigger.timer,
                                                     None if trigger.gate.rolling
                                                     else trigger.runner) if t is not None]
        await asyncio.gather(*ending, return_exceptions=True)

    def _open(self, app: AppConfig) -> _AppTrigger:
        trigger = _AppTrigger(_key(app), RollGate(app.watch_delay))
        trigger.runner = asyncio.create_task(self._run(app.name, trigger))
        if app.watch:
            trigger.watcher = asyncio.create_task(self._watch(app, trigger))
        if app.cron_restart is not None:
            trigger.timer = asyncio.create_task(self._cron(app.cron_restart, trigger))
        return trigger

    def _close(self, trigger: _AppTrigger) -> None:
        trigger.stop.set()  # the watcher's thread sees it within STEP_MS
        trigger.wake.set()
        if trigger.timer is not None:
            trigger.timer.cancel()
        if trigger.runner is not None and not trigger.gate.rolling:
            trigger.runner.cancel()  # a rolling one ends after its roll

    async def _run(self, name: str, trigger: _AppTrigger) -> None:
        """Roll whenever the gate says so, until stopped."""
        loop = asyncio.get_running_loop()
        gate = trigger.gate
        while not trigger.stop.is_set():
            deadline = gate.deadline()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(trigger.wake.wait(), timeout)
            trigger.wake.clear()
            if not trigger.stop.is_set() and gate.take(loop.time()):
                try:
                    await self._roll(name, trigger.why)
                except Exception:  # a failed roll is logged by `roll`; the watch goes on
                    log.exception("%s: the roll asked for by %s failed", name, trigger.why)
                finally:
                    gate.finished()

    async def _watch(self, app: AppConfig, trigger: _AppTrigger) -> None:
        from watchfiles import awatch

        loop = asyncio.get_running_loop()
        roots = [str(p) for p in app.watch]
        patterns = (*DEFAULT_IGNORES, *app.watch_ignore)
        excluded = [str(p) for p in self._excluded(app)]

        def wanted(_change: object, path: str) -> bool:
            return not ignored(path, roots, patterns, excluded)

        try:
            async for changes in awatch(*roots, watch_filter=wanted, step=STEP_MS,
                                        stop_event=trigger.stop, rust_timeout=1000):
                paths = sorted(os.path.relpath(path, app.cwd) for _, path in changes)
                more = f" (+{len(paths) - 1} more)" if len(paths) > 1 else ""
                trigger.why = f"{paths[0]}{more} changed"
                trigger.gate.changed(loop.time())
                trigger.wake.set()
        except Exception as exc:  # a watched directory removed, inotify's limit reached
            log.error("%s: watching %s stopped: %s", app.name, ", ".join(roots), exc)

    async def _cron(self, schedule: CronSchedule, trigger: _AppTrigger) -> None:
        loop = asyncio.get_running_loop()
        while True:
            at = schedule.next_time(self._now())
            while (left := at - self._now()) > 0:
                await asyncio.sleep(min(left, CRON_LOOK))
            trigger.why = f"cron_restart \"{schedule}\""
            trigger.gate.fire(loop.time())
            trigger.wake.set()

    def _now(self) -> float:
        return time.time() + self._offset
