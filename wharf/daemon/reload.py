"""Carrying out a reload: the file read again and checked, then the planner's steps (see
`wharf.daemon.plan`) taken one by one, each app's outcome noted in a ReloadResult.

The new routes are switched to once (before the first removal that is not early, or at the
end): what was added or changed is in place by then, and what goes is drained only after.
An app that fails is kept as it was (a failed roll) or left out (an app that could not be
added), so that the next reload tries it again. What comes after the steps (the workers,
certificates, triggers) is the composition root's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace

from wharf.config import AppConfig, Config, load_config
from wharf.config.load import PROXY_APP
from wharf.config.proxy_checks import bound_by, listen_problems
from wharf.config.reload_checks import check_reloadable
from wharf.control.api import ReloadResult
from wharf.daemon.commands import Commands
from wharf.daemon.output import OutputRouter
from wharf.daemon.plan import Kind, Running, Step, plan_reload
from wharf.daemon.pool import Pool
from wharf.daemon.start_order import StartOrder
from wharf.errors import ConfigError, ControlError, SupervisorError
from wharf.observability.events import EventKind, EventStream
from wharf.registry.build import Address
from wharf.supervise.program import Program
from wharf.supervise.sockets import SharedSockets

log = logging.getLogger("wharf")


class Reloader:
    """Reads a changed config file and takes the steps that bring the apps to it."""

    def __init__(self, programs: dict[str, Program], config: Callable[[], Config],
                 switch_to: Callable[[Config], None], commands: Commands, pool: Pool,
                 order: StartOrder, output: OutputRouter, sockets: SharedSockets,
                 events: EventStream, add: Callable[[AppConfig], Program],
                 remove: Callable[[str], Awaitable[None]],
                 close_unused_sockets: Callable[[], None]) -> None:
        self._programs = programs  # the daemon's, shared
        self._config = config  # the config in force
        self._switch_to = switch_to  # make a config the one in force, and publish it
        self._commands = commands
        self._pool = pool
        self._order = order
        self._output = output
        self._sockets = sockets
        self._events = events
        self._add = add
        self._remove = remove
        self._close_unused_sockets = close_unused_sockets

    def __repr__(self) -> str:
        return f"<Reloader {self._config().path}>"

    async def load(self) -> Config:
        """Read the config file again and check it can replace the one in force (its new
        listeners free, nothing changed that a reload cannot change); ConfigError, with an
        event, if not. Warns about what takes effect only at the next `up`."""
        try:
            new = await asyncio.to_thread(load_config, self._config().path)
            problems = listen_problems(new.proxy, new.apps, self._held_for(new))
            if problems:  # a new listener in use would crash-loop the workers
                raise ConfigError(str(new.path), problems)
            check_reloadable(self._config(), new)  # a new state_dir would lose the CLI
        except ConfigError as exc:
            self._events.emit(EventKind.CONFIG_REFUSED, "; ".join(
                str(p) for p in exc.problems) or exc.message)
            raise
        for table in ("admin", "supervisor_rpc", "cluster"):
            if getattr(new, table) != getattr(self._config(), table):
                log.warning("wharf: [%s] changed; it takes effect at the next `up`", table)
        for warning in new.warnings:
            log.warning("wharf: %s: %s", new.path, warning)
        for key in ("port_range",):
            if getattr(new.daemon, key) != getattr(self._config().daemon, key):
                log.warning("wharf: daemon.%s changed; it takes effect at the next `up`", key)
        return new

    async def apply(self, new: Config) -> ReloadResult:
        """Bring every app to what `new` says, step by step (see `plan_reload`): the new
        routes are switched to once what they need is in place; an app that fails is
        reported and left as it was."""
        steps = plan_reload(self._running(), new.apps)
        change = _Change(new, ReloadResult([], [], [], [], []))
        self._pool.next = new
        try:
            for step in steps:
                if step.kind == Kind.REMOVE and not step.early:
                    self._switch(change)
                await self._take(step, change)
            self._switch(change)
        finally:
            self._pool.next = None
        return change.result

    async def _take(self, step: Step, change: _Change) -> None:
        """Take one step of a reload, noting in `change` what came of it."""
        name, app, result = step.app, step.config, change.result
        if step.kind != Kind.KEEP:
            self._events.emit(EventKind.RELOAD_STEP, step.kind.value, app=name)
        try:
            if step.kind == Kind.REMOVE:
                await self._remove(name)
                result.removed.append(name)
            elif step.kind == Kind.ADD:
                try:
                    self._add(app)
                    self._order.request([name])
                except (ControlError, SupervisorError):  # its socket: the next reload retries
                    change.absent.add(name)
                    self._close_unused_sockets()
                    raise
                result.added.append(name)  # it runs, even if it does not become ready
                if not await self._order.settled([name], self._commands.start_window(app)):
                    await self._commands.raise_failures([self._programs[name]], None)
            elif step.kind == Kind.KEEP:
                result.unchanged.append(name)
            elif step.kind == Kind.SCALE:
                self._output.configure(app)
                result.scaled.append(name)
                await self._scale_to(name, app)
            else:
                try:
                    await self._roll_to(name, app)
                except (ControlError, SupervisorError):  # kept as it was: the next reload retries
                    change.kept[name] = self._config().apps.get(name, app)
                    raise
                result.rolled.append(name)
                if app.instances != len(self._programs[name].instances):
                    await self._scale_to(name, app)
        except (ControlError, SupervisorError) as exc:
            for done in (result.added, result.scaled, result.rolled):
                if name in done:
                    done.remove(name)
            result.failed.append(f"{name} ({exc.message})")

    def _switch(self, change: _Change) -> None:
        """Make the new file's routes the ones published (once per reload): what was added or
        changed is in place, what goes has not been drained yet."""
        if change.switched:
            return
        change.switched = True
        apps = {n: a for n, a in {**change.new.apps, **change.kept}.items()
                if n not in change.absent}
        self._switch_to(replace(change.new, apps=apps) if change.kept or change.absent
                        else change.new)

    def _running(self) -> dict[str, Running]:
        """What runs of each app, for the planner (the proxy workers aside)."""
        return {name: Running(p.app, len(p.instances),
                              all(i.app.same_except_instances(p.app) for i in p.instances))
                for name, p in self._programs.items() if name != PROXY_APP}

    async def _scale_to(self, name: str, app: AppConfig) -> None:
        """Scale an app to its new count; new instances that do not become ready are
        reported, not undone: they exist, and the supervisor keeps trying."""
        await self._commands.scale(self._programs[name], app.instances,
                                   self._commands.start_timeout(app))

    async def _roll_to(self, name: str, app: AppConfig) -> None:
        """Roll a running app to a changed config, at its current instance count."""
        program = self._programs[name]
        self._output.configure(app)
        program.listen_fd = self._pool.listen_fd(app)
        try:
            await self._commands.roll(program, self._commands.start_timeout(app),
                                      replace(app, instances=len(program.instances)))
        finally:  # a failed roll may leave the app on its old socket (or on both)
            program.listen_fd = self._pool.listen_fd(program.app)
            self._close_unused_sockets()

    def _held_for(self, new: Config) -> dict[Address, str]:
        """The addresses this daemon holds, by owner, as `new` may take them over: those of an
        app it removes are free for anyone (removals go first)."""
        held = {**bound_by(self._config().proxy, {}),
                **{address: f"app {name}" for address, name in self._sockets.owners().items()}}
        heirs = bound_by(new.proxy, new.apps)
        gone = {f"app {name}" for name in self._config().apps if name not in new.apps}
        return {address: heirs.get(address, owner) if owner in gone else owner
                for address, owner in held.items()}


def describe_reload(result: ReloadResult) -> str:
    """What a reload did, in a line: "added web; rolled api" (the unchanged apps left out)."""
    parts = [f"{k} {', '.join(v)}" for k, v in asdict(result).items() if v and k != "unchanged"]
    return "; ".join(parts) or "nothing changed"


@dataclass(slots=True)
class _Change:
    """A reload under way: the new file, what came of each app so far."""

    new: Config
    result: ReloadResult
    kept: dict[str, AppConfig] = field(default_factory=dict)  # failed rolls, as they were
    absent: set[str] = field(default_factory=set)  # new apps that could not be added
    switched: bool = False  # the new routes are published
