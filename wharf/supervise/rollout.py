"""The executor of changes to a running program: roll, restart in place, scale, with no drop
in capacity and no request lost.

It decides nothing about traffic: the `Pool` it is given (the daemon) says when an instance
takes traffic, why it does not, and takes instances out of the pool (draining their requests in
flight) around a block that stops or restarts them. Every failure is a ControlError whose text
says what was done and what still serves.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol

from wharf.config.model import AppConfig
from wharf.errors import ControlError, SupervisorError
from wharf.supervise.instance import Instance
from wharf.supervise.program import Notifier, Program
from wharf.supervise.states import State

# How long a replacement that will not be used may take to exit (it gets SIGKILL before).
DISCARD_TIMEOUT = 30.0


class Pool(Protocol):
    """What the executor asks of whoever routes traffic to the instances."""

    def out_of_pool(self, program: Program,
                    leaving: list[Instance]) -> contextlib.AbstractAsyncContextManager[None]:
        """Take `leaving` out of the pool and drain them; they stay out during the block."""
        ...

    async def became_ready(self, instance: Instance, timeout: float) -> bool: ...

    def why_not_ready(self, instance: Instance) -> str: ...

    def listen_fd(self, app: AppConfig) -> int | None: ...

    def check_running(self) -> None: ...


class Rollout:
    """Rolls, restarts and scales programs through a Pool."""

    def __init__(self, pool: Pool, notifier: Notifier) -> None:
        self._pool = pool
        self._notifier = notifier

    async def roll(self, program: Program, timeout: float, config: AppConfig | None = None
                   ) -> None:
        """Replace every instance (with `config`, if it changed) at the current count: in
        batches of `max_surge` beside the old ones, or, for fixed ports (which cannot be held
        twice), one by one in place. A new process that does not become ready stops the roll;
        the instances not yet replaced keep serving."""
        config = config or program.app
        if config.port is not None:
            for instance in list(program.instances):
                await self.restart_in_place(program, instance, timeout, config)
            program.app = config
            return
        count = len(program.instances)
        for first in range(0, count, config.max_surge):
            self._pool.check_running()
            batch = self._replacements(program, range(first, min(count, first + config.max_surge)),
                                       config)
            for new in batch:
                new.start()
            ready = [await self._pool.became_ready(new, timeout) for new in batch]
            if not all(ready):
                failed = batch[ready.index(False)]
                why = self._pool.why_not_ready(failed)
                await self._discard(program, batch)
                done = f"; {first} of {count} had been replaced" if first else ""
                raise ControlError(
                    f"{failed.name}: the new instance did not become ready ({why}); the reload "
                    f"stopped and the old instances keep serving{done}",
                    hint=f"see `wharf logs {program.name}`")
            old = [program.adopt(new) for new in batch]
            async with self._pool.out_of_pool(program, old):
                await self._stop(program, old)

    async def restart_in_place(self, program: Program, instance: Instance, timeout: float,
                               config: AppConfig | None = None, why: str = "") -> None:
        """Drain an instance (at the address it serves now), restart it (with `config`, if
        given) and wait until it is ready; if it is not, put it back on the app's running
        config (its socket, or a port of that config) and say why."""
        async with self._pool.out_of_pool(program, [instance]):
            if config is not None:
                program.reconfigure_in_place(instance, config, program.listen_fd)
            instance.restart(why)
        if not await self._pool.became_ready(instance, timeout):
            reason = self._pool.why_not_ready(instance)
            if instance.app != program.app:  # the rollback: as it was before this reload
                program.reconfigure_in_place(instance, program.app,
                                             self._pool.listen_fd(program.app))
                instance.restart()
            raise ControlError(f"{instance.name} did not become ready after its restart "
                               f"({reason})", hint=f"see `wharf logs {program.name}`")

    async def scale(self, program: Program, count: int, timeout: float) -> None:
        """Run `count` instances: new ones count once they take traffic (ControlError naming
        each that does not, within `timeout`); removed ones leave the pool and are stopped
        once their requests in flight have finished."""
        self._pool.check_running()
        if count < len(program.instances):
            async with self._pool.out_of_pool(program, program.instances[count:]):
                await program.scale(count)
            return
        first = len(program.instances)
        await program.scale(count)
        added = program.instances[first:]
        ready = await asyncio.gather(*(self._pool.became_ready(i, timeout) for i in added))
        failed = [i for i, ok in zip(added, ready, strict=True) if not ok]
        if failed:
            raise ControlError("; ".join(self.start_failure(i, timeout) for i in failed)
                               + "; the other instances serve",
                               hint=f"see `wharf logs {program.name}`")

    def start_failure(self, instance: Instance, timeout: float) -> str:
        """Why a new instance is not taking traffic: it gave up, or it ran out of time."""
        why = self._pool.why_not_ready(instance)
        if why.startswith("not ready after"):  # the readiness check gave up, and says when
            return f"{instance.name}: {why}"
        waiting = instance.state in (State.STARTING, State.RUNNING, State.BACKOFF)
        what = f"not ready after {timeout:g}s" if waiting else instance.state.value
        return f"{instance.name}: {what} ({why})"

    def _replacements(self, program: Program, indexes: range, config: AppConfig
                      ) -> list[Instance]:
        batch: list[Instance] = []
        try:
            for i in indexes:
                batch.append(program.replacement(i, config))
        except SupervisorError:  # no port left for one: give back the others'
            for new in batch:
                program.discard(new)
            raise
        return batch

    async def _discard(self, program: Program, batch: list[Instance]) -> None:
        """Stop replacements that will not be used; those already ready (a batch of several)
        are in the pool, so they are drained first."""
        async with self._pool.out_of_pool(program, batch):
            for new in batch:
                new.stop()
            for new in batch:
                await self._stopped(new, DISCARD_TIMEOUT)
        for new in batch:
            program.discard(new)

    async def _stop(self, program: Program, old: list[Instance]) -> None:
        """Stop instances a roll has replaced; the program keeps them, as retiring, until
        they have exited, so that a shutdown meanwhile stops them too."""
        program.retiring.extend(old)
        try:
            for instance in old:
                instance.stop()
            for instance in old:
                await self._stopped(instance, instance.app.stop_timeout + 5.0)
        finally:
            program.forget_retired()

    async def _stopped(self, instance: Instance, timeout: float) -> None:
        await self._notifier.wait_for(lambda: instance.state == State.STOPPED, timeout)

