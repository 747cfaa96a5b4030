"""The commands that change what runs, one app or all: start, stop, restart, scale, roll
and signal, and waiting until what was started takes traffic (`up`, `start`).

One change at a time (`lock`, which the reload takes too). Each waits for the outcome and
raises ControlError naming every instance that failed, so the CLI and the APIs can say why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping

from wharf.config import AppConfig
from wharf.config.load import PROXY_APP
from wharf.daemon.cluster_link import ClusterLink
from wharf.daemon.pool import Pool
from wharf.daemon.start_order import StartOrder
from wharf.errors import ControlError, SupervisorError, UsageError
from wharf.observability.events import EventKind, EventStream
from wharf.registry.registry import Registry
from wharf.supervise.instance import Instance
from wharf.supervise.program import Notifier, Program
from wharf.supervise.rollout import Rollout
from wharf.supervise.states import State


def select(programs: Mapping[str, Program], app: str | None) -> list[Program]:
    """The programs of one app or all; UsageError if there is no such app."""
    if app is None:
        return list(programs.values())
    if app not in programs:
        raise UsageError(f"no app named {app!r}")
    return [programs[app]]


def _instance_of(program: Program, index: int) -> Instance:
    """Instance `index` of a program; UsageError if it has no such instance."""
    if not 0 <= index < len(program.instances):
        raise UsageError(f"{program.name} has no instance {index} (it runs "
                         f"{len(program.instances)})")
    return program.instances[index]


class Commands:
    """Start, stop, restart, scale, roll and signal the daemon's programs."""

    def __init__(self, programs: dict[str, Program], pool: Pool, order: StartOrder,
                 rollout: Rollout, registry: Registry, cluster: ClusterLink,
                 notifier: Notifier, events: EventStream,
                 close_unused_sockets: Callable[[], None],
                 check_running: Callable[[], None]) -> None:
        self._programs = programs  # the daemon's, shared
        self._pool = pool
        self._order = order
        self._rollout = rollout
        self._registry = registry
        self._cluster = cluster
        self._notifier = notifier
        self._events = events
        self._close_unused_sockets = close_unused_sockets
        self._check_running = check_running
        self._change_lock = asyncio.Lock()  # one reload, roll or scale at a time

    def __repr__(self) -> str:
        return f"<Commands {'busy' if self._change_lock.locked() else 'idle'}>"

    async def start_app(self, app: str | None, timeout: float,
                        instance: int | None = None) -> None:
        """Start one app or all (or one `instance` of an app); return once every instance
        takes traffic (ControlError naming each that does not within `timeout`, or gave up)."""
        async with self.lock():
            programs = select(self._programs, app)
            if instance is not None:  # one process (supervisorctl): no order to keep
                for program in programs:
                    _instance_of(program, instance).start()
                await self.raise_failures(programs, timeout, instance)
                return
            if PROXY_APP in (p.name for p in programs):
                self._programs[PROXY_APP].start()
            names = self._order.request((p.name for p in programs if p.name != PROXY_APP),
                                        with_dependencies=True)
            await self._raise_waiting(names, timeout)
            await self.raise_failures([self._programs[n] for n in names] +
                                      [p for p in programs if p.name == PROXY_APP], timeout)

    async def stop_app(self, app: str | None, instance: int | None = None) -> None:
        """Stop one app or all (dependents before what they depend on), and wait until every
        process has exited. One `instance` of an app leaves the pool (drained) before it is
        stopped: the others serve on."""
        async with self.lock():
            if instance is None:
                await self.stop_in_order(select(self._programs, app))
                return
            program = select(self._programs, app)[0]
            one = _instance_of(program, instance)
            leaving = [one] if self._pool.routed(program.name) else []
            async with self._pool.out_of_pool(program, leaving):
                one.stop()
                await self._notifier.wait_for(lambda: one.state == State.STOPPED,
                                              program.app.stop_timeout + 5.0)

    async def stop_in_order(self, programs: list[Program]) -> None:
        """Stop `programs` in waves, dependents first (see `order.stop_waves`), once the
        other hosts of a cluster have stopped sending to them."""
        await self._cluster.deregister(i for p in programs for i in p.instances)
        self._order.cancel(p.name for p in programs)
        by_name = {p.name: p for p in programs}
        for wave in self._order.stop_waves(by_name):
            await asyncio.gather(*(by_name[n].stop_and_wait() for n in wave))

    async def _raise_waiting(self, names: list[str], timeout: float | None) -> None:
        """Wait until the apps of `names` have started (their dependencies are up); raise
        naming those that wait for a dependency that failed or is stopped."""
        window = timeout if timeout is not None else \
            sum(self.start_window(self._programs[n].app) for n in names)
        waiting = await self._order.settled(names, window)
        if waiting:
            raise ControlError("; ".join(f"{n}: {why}" for n, why in waiting.items()),
                               hint="see `wharf status`; `wharf start APP` starts an app and the "
                               "stopped or failed apps it depends on")

    async def restart_app(self, app: str | None, timeout: float) -> None:
        """Restart one app or all. An app that a route sends to is rolled (new processes
        ready before the old ones leave the pool, or one by one in place for fixed ports), so
        a restart fails no request; the others are stopped and started."""
        async with self.lock():
            programs = select(self._programs, app)
            plain = [p for p in programs if not self._pool.routed(p.name)]
            for program in plain:
                program.restart()
            try:
                for program in programs:
                    if program not in plain:
                        await self.roll(program, timeout)
            finally:
                self._close_unused_sockets()
            await self.raise_failures(plain, timeout)

    async def wait_started(self, app: str | None) -> None:
        """Wait until every instance has started and takes traffic, or has failed (each
        app's start window bounds the wait); ControlError naming every failure."""
        programs = select(self._programs, app)
        await self._raise_waiting([p.name for p in programs if p.name in self._order.wanted],
                                  None)
        await self.raise_failures(programs, None)

    def signal_app(self, app: str | None, sig: int) -> list[tuple[str, int, int]]:
        """Send `sig` to the main process of every instance of one app or all (the proxy
        workers excepted); return (app, index, pid) of each process signalled."""
        sent = []
        for program in select(self._programs, app):
            if program.name != PROXY_APP:
                for instance in (*program.instances, *program.pending):
                    pid = instance.send_signal(sig)
                    if pid is not None:
                        sent.append((program.name, instance.index, pid))
        return sent

    async def scale_app(self, app: str, count: int, timeout: float) -> None:
        """Run `count` instances of `app`: new ones join the pool once running; removed ones
        leave the pool first and are stopped once their requests in flight have finished."""
        async with self.lock():
            try:
                await self.scale(select(self._programs, app)[0], count, timeout)
            finally:
                self._close_unused_sockets()

    async def roll_app(self, app: str, timeout: float) -> None:
        """Replace the instances of `app` with no drop in capacity (see Rollout.roll)."""
        async with self.lock():
            try:
                await self.roll(select(self._programs, app)[0], timeout)
            finally:
                self._close_unused_sockets()

    async def roll(self, program: Program, timeout: float,
                   config: AppConfig | None = None) -> None:
        """Roll a program (see Rollout.roll), saying so in the events."""
        name = program.name
        self._events.emit(EventKind.ROLL_STARTED, f"replacing {len(program.instances)} "
                          "instance(s)", app=name)
        try:
            await self._rollout.roll(program, timeout, config)
        except (ControlError, SupervisorError) as exc:
            self._events.emit(EventKind.ROLL_FAILED, exc.message, app=name)
            raise
        self._events.emit(EventKind.ROLL_DONE, "every instance replaced", app=name)

    async def scale(self, program: Program, count: int, timeout: float) -> None:
        """Scale a program (see Rollout.scale), saying so in the events."""
        before = len(program.instances)
        try:
            await self._rollout.scale(program, count, timeout)
        finally:
            self._events.emit(EventKind.SCALE_DONE, f"scaled from {before} to "
                              f"{len(program.instances)} instance(s)", app=program.name)

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        """One change at a time: start, stop, restart, scale, roll, reload."""
        async with self._change_lock:
            self._check_running()
            yield

    async def raise_failures(self, programs: list[Program], timeout: float | None,
                             instance: int | None = None) -> None:
        """Wait until the instances of `programs` (or only number `instance`) settle (see
        `Pool.settled`); raise naming those that failed."""
        pairs = [(i, timeout if timeout is not None else self.start_window(p.app))
                 for p in programs for i in p.instances if instance in (None, i.index)]
        results = await asyncio.gather(*(self._pool.settled(i, t) for i, t in pairs))
        failed = [self._rollout.start_failure(i, t)
                  for (i, t), ok in zip(pairs, results, strict=True) if not ok]
        if failed:
            names = sorted({i.app.name for (i, _), ok in zip(pairs, results, strict=True)
                            if not ok})
            raise ControlError("; ".join(failed), hint=f"see `wharf logs {names[0]}`")

    def start_window(self, app: AppConfig) -> float:
        """How long the first start of `app` may take: every retry `startretries` allows,
        with its backoff, then readiness and health checks."""
        tries = app.startretries + 1
        backoff = sum(min(app.backoff_max, app.backoff * 2 ** k) for k in range(tries - 1))
        return tries * app.startsecs + backoff + self.start_timeout(app)

    def start_timeout(self, app: AppConfig) -> float:
        """How long a new instance of `app` may take to take traffic: start, readiness,
        health checks."""
        return app.startsecs + app.ready_timeout + self._registry.health_wait(app.name) + 5.0
