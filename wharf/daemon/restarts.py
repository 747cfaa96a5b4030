"""The restarts the daemon decides on its own: an instance whose RSS is over its
`max_memory` (drained first, so its requests in flight finish), and an app whose `watch` or
`cron_restart` fired (rolled as `wharf restart` rolls it). The CPU/RSS sampling that the
first needs is the one `status` shows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from wharf.daemon.commands import Commands
from wharf.daemon.event_feed import instance_fields
from wharf.daemon.pool import Pool
from wharf.daemon.start_order import StartOrder
from wharf.errors import ControlError, SupervisorError
from wharf.observability.events import EventKind, EventStream
from wharf.observability.process_stats import ProcessSampler
from wharf.supervise.instance import Instance
from wharf.supervise.program import Program
from wharf.supervise.states import State

log = logging.getLogger("wharf")

SAMPLE_INTERVAL = 2.0  # seconds between CPU/RSS samples (PM2 samples every second or two)


class Restarts:
    """Restarts instances over `max_memory` and rolls the apps whose triggers fired."""

    def __init__(self, programs: dict[str, Program], sampler: ProcessSampler, pool: Pool,
                 order: StartOrder, commands: Commands, events: EventStream,
                 spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
        self._programs = programs  # the daemon's, shared
        self._sampler = sampler
        self._pool = pool
        self._order = order
        self._commands = commands
        self._events = events
        self._spawn = spawn  # run a task the daemon keeps a reference to

    def __repr__(self) -> str:
        return f"<Restarts apps={len(self._programs)}>"

    async def roll(self, name: str, why: str) -> None:
        """Roll an app that asked for it (`watch`, `cron_restart`), as `wharf restart` does;
        not one that is stopped or waits for its dependencies."""
        program = self._programs.get(name)
        if program is None or program.is_stopped() or name in self._order.wanted:
            log.info("%s: %s; not running, so not restarted", name, why)
            return
        log.info("%s: %s: restarting", name, why)
        self._events.emit(EventKind.INSTANCE_RESTART, f"restarting: {why}", app=name)
        try:
            await self._commands.restart_app(name, self._commands.start_timeout(program.app))
        except (ControlError, SupervisorError) as exc:
            log.warning("%s: the restart asked for by %s failed: %s", name, why, exc.message)

    async def sample_forever(self) -> None:
        """Sample every instance's CPU and RSS (what `status` shows), and restart those over
        their `max_memory`."""
        while True:
            instances = [i for p in self._programs.values() for i in p.instances
                         if i.pid is not None]
            samples = self._sampler.sample([i.pid for i in instances if i.pid is not None])
            for instance in instances:
                limit = instance.app.max_memory
                sample = samples.get(instance.pid or 0)
                if limit and sample and sample.rss_bytes > limit \
                        and instance.state == State.RUNNING \
                        and instance not in self._pool.draining:
                    why = f"RSS {sample.rss_bytes} bytes over max_memory {limit}"
                    log.warning("%s: restarted: %s", instance.name, why)
                    self._spawn(self._restart_drained(instance, why))
            await asyncio.sleep(SAMPLE_INTERVAL)

    async def _restart_drained(self, instance: Instance, why: str) -> None:
        """Restart an instance the daemon decided to restart (max_memory) once its requests
        in flight have finished."""
        program = self._programs.get(instance.app.name)
        if program is None or instance not in program.instances:
            return
        leaving = [instance] if self._pool.routed(program.name) else []
        async with self._pool.out_of_pool(program, leaving):
            self._events.emit(EventKind.INSTANCE_RESTART, f"restarted: {why}",
                              **instance_fields(instance))
            instance.restart(why)
