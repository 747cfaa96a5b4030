"""Which instances take traffic, and taking them out of the pool before they stop.

An instance of an app a route sends to (or that another app depends on and that says where
it listens) counts as ready once its readiness check passes and the route's active health
checks have it up; a proxy worker once it listens on every address. Instances leave the pool
by being marked as draining: a snapshot without them is published, the other hosts of a
cluster are told, and the daemon waits until no request is in flight to the addresses that
only they served. This is the Pool that `wharf.supervise.rollout.Rollout` works through.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from wharf.config import AppConfig, Config
from wharf.config.load import PROXY_APP
from wharf.daemon.cluster_link import ClusterLink
from wharf.daemon.event_feed import instance_fields
from wharf.daemon.proxy_workers import ProxyWorkers
from wharf.observability.events import EventKind, EventStream
from wharf.registry.build import Address, instance_address
from wharf.registry.providers.local import addresses
from wharf.registry.publisher import Publisher
from wharf.registry.readiness import Readiness
from wharf.registry.registry import Registry
from wharf.supervise.instance import Instance
from wharf.supervise.program import Notifier, Program
from wharf.supervise.sockets import SharedSockets
from wharf.supervise.states import State


class Pool:
    """The daemon's view of who serves: readiness, health, draining."""

    def __init__(self, programs: dict[str, Program], draining: set[Instance],
                 registry: Callable[[], Registry], publisher: Publisher, notifier: Notifier,
                 events: EventStream, proxy: ProxyWorkers, cluster: Callable[[], ClusterLink],
                 sockets: SharedSockets, check_running: Callable[[], None]) -> None:
        self._programs = programs  # the daemon's, shared
        self.draining = draining  # out of the pool (the local provider's, shared)
        self._registry = registry  # made after this pool: it asks it what is routed
        self._publisher = publisher
        self._notifier = notifier
        self._events = events
        self._proxy = proxy
        self._cluster = cluster
        self._sockets = sockets
        self._check_running = check_running
        self.readiness: Readiness | None = None  # set once the loop runs
        self.next: Config | None = None  # the file a reload is bringing in

    def __repr__(self) -> str:
        return f"<Pool draining={len(self.draining)}>"

    def routed(self, app: str) -> bool:
        """True if a route sends to `app`, now or in the file a reload brings in (its new
        apps must pass readiness before the new routes are published)."""
        return self._registry().routed(app, self.next)

    def probed(self, app: str) -> bool:
        """Whether an app's instances pass a readiness check before they count as ready: a
        route sends to it, or another app depends on it and it says where it listens (a
        `port`, a `socket` or a `ready_path`)."""
        if self.routed(app):
            return True
        program = self._programs.get(app)
        cfg = program.app if program is not None else None
        return cfg is not None and (cfg.port, cfg.socket, cfg.ready_path) != (None, None, None) \
            and any(app in p.app.depends_on for p in self._programs.values())

    def is_ready(self, instance: Instance) -> bool:
        """RUNNING, and if a route sends to its app: ready, and up in the route's active
        health checks (a roll that drained an old instance for a new one still being checked
        would leave the pool short)."""
        if instance.state != State.RUNNING:
            return False
        if instance.app.name == PROXY_APP:
            return self._proxy.listens(instance)
        if not self.probed(instance.app.name) or self.readiness is None:
            return True
        return self.readiness.is_ready(instance.app.name, instance.index, instance.pid) \
            and not self._health_pending(instance)

    def _health_pending(self, instance: Instance) -> list[str]:
        """The health-checked services over its app in which the instance is not up yet."""
        return self._registry().health_pending(instance.app.name,
                                               instance_address(instance.app, instance.port))

    def _readiness_failed(self, instance: Instance) -> bool:
        return self.readiness is not None and \
            (instance.app.name, instance.index) in self.readiness.failures

    def why_not_ready(self, instance: Instance, fallback: str = "not ready in time") -> str:
        """Why an instance does not take traffic, as the user should read it."""
        failure = self.readiness.failures.get((instance.app.name, instance.index), "") \
            if self.readiness is not None else ""
        pending = self._health_pending(instance) if instance.state == State.RUNNING else []
        unhealthy = f"not up in the health checks of {', '.join(pending)}" if pending else ""
        return instance.machine.reason or failure or unhealthy or fallback

    def running_changed(self, instance: Instance, old: State, new: State) -> None:
        """An instance of a file's app became RUNNING or stopped being: its readiness check
        starts or ends."""
        name = instance.app.name
        if self.readiness is not None and self.probed(name):
            if new == State.RUNNING and instance.pid is not None:
                self.readiness.track(instance.app, instance.index, instance.pid, instance.port)
            elif old == State.RUNNING:
                self.readiness.forget(name, instance.index, instance.last_pid)

    def track_readiness(self) -> None:
        """Probe the running instances of every routed app: a reload may have given an app
        its first route, and its instances became RUNNING before anyone asked."""
        if self.readiness is None:
            return
        for name, program in self._programs.items():
            if name != PROXY_APP and self.probed(name):
                for i in program.instances:
                    if i.state == State.RUNNING and i.pid is not None:
                        self.readiness.track(i.app, i.index, i.pid, i.port)

    def _done(self, instance: Instance) -> bool:
        """Ready, or settled elsewhere (its readiness check failed, or it ended)."""
        return self.is_ready(instance) or self._readiness_failed(instance) or \
            instance.state in (State.FATAL, State.EXITED, State.STOPPED)

    async def became_ready(self, instance: Instance, timeout: float) -> bool:
        """Wait until the instance takes traffic (True) or settles elsewhere (False)."""
        await self._notifier.wait_for(lambda: self._done(instance), timeout)
        return self.is_ready(instance)

    async def settled(self, instance: Instance, timeout: float) -> bool:
        """Wait until an instance takes traffic or has ended: True if it serves, or ended as
        it may (stopped by someone, or a job that exited with a code in exit_codes)."""
        await self._notifier.wait_for(lambda: self._done(instance), timeout)
        if instance.state == State.EXITED:
            last = instance.machine.last_exit
            return last is not None and last.signal is None and \
                last.code in instance.app.exit_codes
        return instance.state == State.STOPPED or self.is_ready(instance)

    def listen_fd(self, app: AppConfig) -> int | None:
        """The shared socket of a socket-mode app (None for one on its own ports)."""
        return self._sockets.listen_fd(app)

    def check_running(self) -> None:
        """A change under way stops starting processes once the daemon is stopping (nobody
        would stop them)."""
        self._check_running()

    @contextlib.asynccontextmanager
    async def out_of_pool(self, program: Program,
                          leaving: list[Instance]) -> AsyncIterator[None]:
        """Take `leaving` out of the pool and drain them; they stay out while the block stops
        (or restarts) them."""
        keys = set(leaving) - self.draining
        self.draining |= keys
        try:
            for instance in keys:
                self._events.emit(EventKind.INSTANCE_DRAINING, "out of the pool, draining",
                                  **instance_fields(instance))
            if leaving:
                await self._cluster().deregister(leaving)
                await self._drain(program, leaving)
            for instance in keys:
                self._events.emit(EventKind.INSTANCE_DRAINED, "drained",
                                  **instance_fields(instance))
            yield
        finally:
            self.draining -= keys

    async def _drain(self, program: Program, leaving: list[Instance]) -> None:
        """With `leaving` marked as draining: publish a pool without them and wait (up to
        drain_timeout) until every worker serves it and no request is in flight to the
        addresses that only they served. In socket mode the instances that stay share the
        leaving ones' address: the proxy cannot tell their requests apart (waiting would
        always last drain_timeout under traffic), so an old instance finishes its own
        connections after SIGTERM, as under systemd."""
        staying = addresses(i for i in (*program.instances, *program.pending)
                            if i not in leaving)
        gone = tuple(a for a in addresses(leaving) if a not in staying)
        if gone:
            await self.settle(gone, program.app.drain_timeout)
        else:
            self._registry().publish()

    async def settle(self, gone: tuple[Address, ...], timeout: float) -> None:
        """Publish, and wait (at most `timeout`) until every worker serves it and no request
        is in flight to `gone` (addresses it no longer has)."""
        version = self._registry().publish()

        def settled() -> bool:
            return self._publisher.serving(version) and not any(
                self._publisher.inflight(host, port) for host, port in gone)

        await self._notifier.wait_for(settled, timeout)
