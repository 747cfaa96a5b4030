"""A program: the N instances of one app, started, stopped, scaled and reconfigured together."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from wharf.config.model import AppConfig
from wharf.errors import SupervisorError
from wharf.supervise.instance import Instance, Output
from wharf.supervise.logs import Clock
from wharf.supervise.ports import PortAllocator
from wharf.supervise.spawner import Spawner
from wharf.supervise.states import SETTLED_STATES, State


class Notifier:
    """Wakes whoever waits for a condition on instance states, whenever any state changes."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        """Something changed: let every waiter look again."""
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` holds; False if `timeout` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            fut = loop.create_future()
            self._waiters.append(fut)
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                return predicate()
        return True


# Ports of replacements are held under index SURGE + i until they take instance i's place.
SURGE = 1_000_000


class Program:
    """All instances of one app."""

    def __init__(self, app: AppConfig, spawner: Spawner, ports: PortAllocator | None,
                 output: Output, clock: Clock, notifier: Notifier,
                 on_change: Callable[[Instance, State, State], None],
                 listen_fd: int | None = None) -> None:
        self.app = app
        self.instances: list[Instance] = []
        # Replacements of a rolling reload, not yet adopted: they join the pool once ready,
        # beside the instances they will replace.
        self.pending: list[Instance] = []
        # Instances taken out of the program (replaced by a roll, scaled away) that have not
        # exited yet: a stop or a shutdown must still reach them.
        self.retiring: list[Instance] = []
        self._spawner = spawner
        self._ports = ports
        self._output = output
        self._clock = clock
        self._notifier = notifier
        self._on_change = on_change
        # Socket mode: the socket new instances get (each keeps the one it was created with).
        self.listen_fd = listen_fd
        self._resize(app.instances)

    def __repr__(self) -> str:
        states = ",".join(i.state.value for i in self.instances)
        return f"<Program {self.app.name} [{states}]>"

    @property
    def name(self) -> str:
        """The app's name."""
        return self.app.name

    def start(self) -> None:
        """Ask every instance to run."""
        for instance in self.instances:
            instance.start()

    def stop(self) -> None:
        """Ask every instance to stop, every replacement a roll has started, and every
        instance still on its way out."""
        for instance in self.processes():
            instance.stop()

    def restart(self) -> None:
        """Stop and start every instance."""
        for instance in self.instances:
            instance.restart()

    def processes(self) -> tuple[Instance, ...]:
        """Every instance that may have a process: in place, pending, or retiring."""
        return (*self.instances, *self.pending, *self.retiring)

    def is_stopped(self) -> bool:
        """True when no instance (nor replacement, nor retiring one) has a process."""
        return all(i.state == State.STOPPED for i in self.processes())

    def forget_retired(self) -> None:
        """Drop the retiring instances that have exited."""
        self.retiring = [i for i in self.retiring if i.state != State.STOPPED]

    def is_settled(self) -> bool:
        """True when no instance is on its way somewhere (starting, backing off, stopping)."""
        return all(i.state in SETTLED_STATES for i in self.instances)

    async def stop_and_wait(self) -> None:
        """Stop every instance and wait until all have exited (SIGKILL ends the stubborn)."""
        self.stop()
        await self._notifier.wait_for(self.is_stopped, self.app.stop_timeout + 5.0)

    async def scale(self, count: int) -> None:
        """Run `count` instances: start new ones, stop and drop the highest-numbered ones."""
        if count > len(self.instances):
            first = len(self.instances)
            try:
                self._resize(count)
            except SupervisorError:  # no port left for one: none of them, then
                for instance in self.instances[first:]:
                    self._release(instance.index)
                del self.instances[first:]
                raise
            for instance in self.instances[first:]:
                instance.start()
        elif count < len(self.instances):
            extra = self.instances[count:]
            for instance in extra:
                instance.stop()
            await self._notifier.wait_for(
                lambda: all(i.state == State.STOPPED for i in extra), self.app.stop_timeout + 5.0)
            for instance in extra:
                self._release(instance.index)
            del self.instances[count:]
            # One that outlived SIGKILL's wait (stuck in the kernel) is still ours to stop.
            self.retiring += [i for i in extra if i.state != State.STOPPED]
        self.app = _with_instances(self.app, count)

    def replacement(self, index: int, app: AppConfig) -> Instance:
        """A new instance to take the place of instance `index` (a rolling reload): same
        index, its own port, not yet in the list and not started. (An app with a fixed port
        is never rolled this way: it cannot hold its port twice.)"""
        port = 0
        if app.socket is not None:
            port = app.socket[1]
        elif self._ports is not None:
            port = self._ports.port_for(app.name, SURGE + index, None)
        instance = Instance(app, index, port, self._spawner, self._output, self._clock,
                            self._on_change)
        instance.listen_fd = self.listen_fd
        self.pending.append(instance)
        return instance

    def reconfigure_in_place(self, instance: Instance, app: AppConfig,
                             listen_fd: int | None) -> None:
        """Give an instance that will restart in place (a fixed port) another config, with
        its port and socket."""
        if self._ports is not None:
            self._ports.release(app.name, instance.index)
        instance.port = self._port(app, instance.index)
        instance.reconfigure(app)
        instance.listen_fd = listen_fd

    def adopt(self, replacement: Instance) -> Instance:
        """Put a replacement in its place; return the instance it replaces."""
        old = self.instances[replacement.index]
        self.instances[replacement.index] = replacement
        self.pending.remove(replacement)
        self.app = replacement.app
        if self._ports is not None:
            self._ports.release(self.app.name, replacement.index)
            self._ports.move(self.app.name, SURGE + replacement.index, replacement.index)
        return old

    def discard(self, replacement: Instance) -> None:
        """A replacement that will not be used: give its port back."""
        self.pending.remove(replacement)
        if self._ports is not None:
            self._ports.release(self.app.name, SURGE + replacement.index)

    def release_ports(self) -> None:
        """Give back every port this program took from the range."""
        for instance in self.instances:
            self._release(instance.index)

    def _release(self, index: int) -> None:
        if self._ports is not None:
            self._ports.release(self.app.name, index)

    def _resize(self, count: int) -> None:
        for index in range(len(self.instances), count):
            instance = Instance(self.app, index, self._port(self.app, index), self._spawner,
                                self._output, self._clock, self._on_change)
            instance.listen_fd = self.listen_fd
            self.instances.append(instance)

    def _port(self, app: AppConfig, index: int) -> int:
        """The port of instance `index`: the shared socket's (every instance serves it), the
        fixed one, or one from the range; 0 for a program without an allocator (the proxy
        workers)."""
        if app.socket is not None:
            return app.socket[1]
        return self._ports.port_for(app.name, index, app.port) if self._ports is not None else 0


def _with_instances(app: AppConfig, count: int) -> AppConfig:
    from dataclasses import replace

    return replace(app, instances=count)
