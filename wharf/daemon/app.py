"""The composition root: builds every part from the config, runs until asked to stop.

Signals only enqueue; the loop acts (SIGTERM/SIGINT: graceful stop, a second one forces it;
SIGHUP: reload). The daemon outlives any app: an app's failure is a state, never an exception
that reaches this loop.

The parts it wires, beside it: `programs` (the table of programs), `pool` (who serves, and
draining), `commands` (start, stop, restart, scale, roll, signal), `reload` (a reload's
steps), `proxy_workers`, `restarts` (max_memory, watch, cron_restart), `status` (the rows),
`cluster_link`, `certs`, `start_order`, `triggers`, `systemd`. The Daemon is what the control
socket, the admin API and the XML-RPC API call (`DaemonApi`); it hands each call to its part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wharf.addresses import format_address
from wharf.certs.material import build_tls
from wharf.certs.tickets import TicketKeys
from wharf.config import AppConfig, Config
from wharf.config.load import PROXY_APP
from wharf.control.api import ReloadResult
from wharf.control.client import socket_path
from wharf.control.server import ControlServer
from wharf.daemon import leftovers
from wharf.daemon.certs import DaemonCerts
from wharf.daemon.cluster_link import ClusterLink
from wharf.daemon.commands import Commands
from wharf.daemon.event_feed import EjectionWatch, PoolWatch, change_detail, emit_state_change
from wharf.daemon.memory import release_free_memory
from wharf.daemon.output import OutputRouter
from wharf.daemon.pool import Pool
from wharf.daemon.programs import ProgramTable
from wharf.daemon.proxy_workers import ProxyWorkers
from wharf.daemon.reload import Reloader, describe_reload
from wharf.daemon.restarts import Restarts
from wharf.daemon.sdnotify import Notifier as SdNotifier
from wharf.daemon.start_order import StartOrder
from wharf.daemon.status import StatusRows
from wharf.daemon.systemd import ServiceManager, status_line
from wharf.daemon.triggers import Triggers
from wharf.errors import ControlError
from wharf.observability.events import EventKind, EventStream
from wharf.observability.process_stats import ProcessSampler
from wharf.observability.traffic import WorkerTraffic
from wharf.registry.build import Target
from wharf.registry.health import HealthChecker
from wharf.registry.providers.local import LocalProvider
from wharf.registry.publisher import Publisher
from wharf.registry.readiness import Readiness
from wharf.registry.registry import Registry
from wharf.registry.snapshot import Tls
from wharf.supervise.instance import Instance
from wharf.supervise.logs import Clock, LogWriter, Sink
from wharf.supervise.ports import PortAllocator
from wharf.supervise.program import Notifier, Program
from wharf.supervise.rollout import Rollout
from wharf.supervise.sockets import SharedSockets
from wharf.supervise.spawner import OsSpawner, Spawner
from wharf.supervise.states import State

if TYPE_CHECKING:
    from wharf.control.admin.server import AdminServer
    from wharf.control.supervisor_rpc.server import RpcServer

log = logging.getLogger("wharf")


class Daemon:
    """Supervises the apps of one config and answers the control socket."""

    def __init__(self, config: Config, echo_output: bool,
                 spawner: Spawner | None = None) -> None:
        self.config = config
        self._spawner = spawner or OsSpawner()
        self._writer = LogWriter()
        self._output = OutputRouter(self._writer, Sink(fd=1) if echo_output else None)
        self._notifier = Notifier()
        self._sampler = ProcessSampler()
        self._programs: dict[str, Program] = {}
        self._stopping: asyncio.Event | None = None
        self._signals = 0
        self._control = ControlServer(self, socket_path(config.daemon.state_dir))
        self.events = EventStream()  # what happened: `wharf events`, the admin API
        self._pool_watch = PoolWatch()
        self._ejections = EjectionWatch()
        self._publisher = Publisher(config.daemon.state_dir / "proxy.sock", self._on_report)
        self._sockets = SharedSockets()
        self._tasks: set[asyncio.Task[None]] = set()
        self._table = ProgramTable(self._programs, self._spawner,
                                   PortAllocator(*config.daemon.port_range), self._output,
                                   Clock(), self._notifier, self._sockets, self._on_change,
                                   lambda: self._pool, lambda: self._order)
        self._proxy = ProxyWorkers(self._programs, lambda: self.config, self._publisher,
                                   self._spawner, self._table.add, self._table.remove,
                                   self._publish)
        draining: set[Instance] = set()  # out of the pool
        self._pool: Pool = Pool(self._programs, draining, lambda: self._registry,
                                self._publisher, self._notifier, self.events, self._proxy,
                                lambda: self._cluster, self._sockets, self.check_running)
        # ACME, the local CA:
        self._certs = DaemonCerts(self._publish_now, self._proxy.served, self.events)
        self._tickets = TicketKeys()  # one set for every worker: resumption across them
        self._admin: AdminServer | None = None
        self._supervisor_rpc: RpcServer | None = None
        # systemd (Type=notify): read before any app starts, and kept from the apps' env
        self._systemd = ServiceManager(SdNotifier.from_environment(), self._status_line)
        # depends_on: the apps that wait, started once they may
        self._order: StartOrder = StartOrder(self._table.apps, self._pool.is_ready, self._notifier)
        local = LocalProvider(lambda: self._programs, draining, self._pool.routed, PROXY_APP)
        self._registry: Registry = Registry(config, self._publisher, local, self._tls,
                                            self._on_serving, self._pool.track_readiness)
        # [cluster]: this host's part in etcd
        self._cluster: ClusterLink = ClusterLink(self._registry)
        self._commands = Commands(self._programs, self._pool, self._order,
                                  Rollout(self._pool, self._notifier), self._registry,
                                  self._cluster, self._notifier, self.events,
                                  self._table.close_unused_sockets, self.check_running)
        self._reloader = Reloader(self._programs, lambda: self.config, self._switch_to,
                                  self._commands, self._pool, self._order, self._output,
                                  self._sockets, self.events, self._table.add,
                                  self._table.remove, self._table.close_unused_sockets)
        self._restarts = Restarts(self._programs, self._sampler, self._pool, self._order,
                                  self._commands, self.events, self._spawn_task)
        self._triggers = Triggers(self._restarts.roll, self._unwatched)  # watch, cron_restart
        self._status = StatusRows(self._programs, lambda: self.config, self._pool, self._order,
                                  self._sampler, self._registry, self._certs, self._cluster)

    def __repr__(self) -> str:
        return f"<Daemon {self.config.path} apps={list(self._programs)}>"

    async def run(self) -> None:
        """Start everything, serve until a stop is requested, then stop everything."""
        raise_fd_limit()
        self._stopping = asyncio.Event()
        await self._control.start()
        pid_file = self.config.daemon.state_dir / "wharf.pid"
        pid_file.write_text(f"{os.getpid()}\n")
        self._table.start_recording(self.config.daemon.state_dir / leftovers.FILE)
        loop = asyncio.get_running_loop()
        for sig, handler in ((signal.SIGTERM, self.handle_term), (signal.SIGINT, self.handle_int),
                             (signal.SIGHUP, self.handle_hup), (signal.SIGUSR1, self.handle_usr1)):
            loop.add_signal_handler(sig, handler)
        sampler = asyncio.create_task(self._restarts.sample_forever())
        rotator = asyncio.create_task(self._rotate_tickets_forever())
        readiness = self._pool.readiness = Readiness(self._pool_changed)
        self._registry.local.readiness = readiness
        self._registry.start(HealthChecker(self._pool_changed, self._on_health))
        self._cluster.join(self.config.cluster, self._schedule_publish, self._pool.settle)
        try:
            await self._publisher.start()
            await self._start_admin()
            await self._start_supervisor_rpc()
            self._certs.sync(self.config)  # stored certificates are in the first snapshot
            self._table.reserve_ports(self.config)
            for app in self.config.apps.values():
                self._table.add(app)
            self._order.request(self.config.apps)
            self._proxy.sync(self.config)
            self._spawn_task(self._systemd.run(self.wait_started(None)))
            self._spawn_task(self._trim_once_started())
            self._triggers.sync(self.config.apps)
            log.info("wharf: running %d app(s) from %s; control socket %s",
                     len(self.config.apps), self.config.path, self._control.path)
            self.events.emit(EventKind.DAEMON_STARTED, f"running {len(self.config.apps)} app(s) "
                             f"from {self.config.path}")
            await self._stopping.wait()
            self._systemd.stopping()
            await self._cluster.leave()
            log.info("wharf: stopping every app")
            self.events.emit(EventKind.DAEMON_STOPPING, "stopping every app")
            await self._triggers.close()
            if PROXY_APP in self._programs:
                await self._programs[PROXY_APP].stop_and_wait()
            await self._commands.stop_in_order(list(self._programs.values()))
        finally:
            sampler.cancel()
            self._cluster.close()
            await self._certs.close()
            rotator.cancel()
            self._registry.close()
            readiness.close()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
                loop.remove_signal_handler(sig)
            self._table.kill_everything()
            self._sockets.close()
            if self._admin is not None:
                await self._admin.close()
            if self._supervisor_rpc is not None:
                await self._supervisor_rpc.close()
            await self._control.close()
            await self._publisher.close()
            self._table.record()
            pid_file.unlink(missing_ok=True)
            self._writer.close()
            self._systemd.close()
            log.info("wharf: stopped")

    async def _start_admin(self) -> None:
        """Serve the admin API if the config asks for it (uvicorn is imported only then)."""
        admin = self.config.admin
        if admin is None:
            return
        from wharf.control.admin.server import AdminServer

        self._admin = AdminServer(self, admin)
        self._admin.app.metrics = self._metrics_page
        await self._admin.start()
        log.info("wharf: dashboard on %s/dashboard/ and admin API on %s/api/ (the token is in "
                 "%s)", self._admin.url, self._admin.url, admin.token_file)

    async def _start_supervisor_rpc(self) -> None:
        """Serve Supervisor's XML-RPC API if the config asks for it (for supervisorctl)."""
        if self.config.supervisor_rpc is None:
            return
        from wharf.control.supervisor_rpc.server import RpcServer

        self._supervisor_rpc = RpcServer(self, self.config.supervisor_rpc)
        await self._supervisor_rpc.start()
        log.info("wharf: Supervisor's XML-RPC API on %s (supervisorctl -s %s)",
                 self.config.supervisor_rpc.url, self.config.supervisor_rpc.url)

    def _status_line(self) -> str:
        """systemd's STATUS=: "3 apps, 7 instances running"."""
        return status_line(self.status_rows(None), PROXY_APP)

    def _metrics_page(self) -> tuple[bytes, str]:
        """`/metrics`: the status rows, the workers' traffic and the certificates."""
        from wharf.observability.metrics import CONTENT_TYPE, exposition

        return exposition(self.status_rows(None, backends=True), self._publisher.traffic.total(),
                          self.cert_rows()), CONTENT_TYPE

    # -- signals ------------------------------------------------------------------------------

    def handle_term(self) -> None:
        """First SIGTERM/SIGINT: graceful stop. Second: kill every process group now."""
        self._signals += 1
        if self._signals > 1:
            log.warning("wharf: second signal, killing every app now")
            self._table.kill_everything()
        self.request_shutdown()

    handle_int = handle_term

    def handle_hup(self) -> None:
        """SIGHUP: reload the config file."""
        self._spawn_task(self._reload_logged())

    def _spawn_task(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)

    def handle_usr1(self) -> None:
        """SIGUSR1: the proxy workers reopen their access log (nginx's USR1, for logrotate)."""
        self._proxy.reopen_logs()

    async def _reload_logged(self) -> None:
        try:
            result = await self.reload()
            log.info("wharf: reloaded: %s", describe_reload(result))
        except Exception as exc:  # a bad file must not take the daemon down
            log.error("wharf: reload refused, nothing changed:\n%s", exc)

    # -- DaemonApi ----------------------------------------------------------------------------

    def app_names(self) -> list[str]:
        """Names of the supervised apps, in config order."""
        return list(self._programs)

    def status_rows(self, app: str | None, backends: bool = False) -> list[dict[str, Any]]:
        """Status rows for `status --json` (a stable interface): one per instance, then, with
        `backends`, one per backend of each route (see `StatusRows`)."""
        return self._status.rows(app, backends)

    def cert_rows(self) -> list[dict[str, Any]]:
        """`wharf certs --json` rows: every name with a certificate source."""
        return self._certs.rows()

    def traffic(self) -> WorkerTraffic:
        """The proxy workers' traffic counters, summed (a gone worker's kept)."""
        return self._publisher.traffic.total()

    def cert_ca(self) -> str:
        """The local CA's certificate (PEM)."""
        return self._certs.ca_pem()

    async def renew_cert(self, name: str, timeout: float) -> dict[str, Any]:
        """Renew a managed name's certificate now; its row once done."""
        return await self._certs.renew(name, timeout)

    async def start_app(self, app: str | None, timeout: float,
                        instance: int | None = None) -> None:
        """Start one app or all (or one `instance` of an app); see `Commands.start_app`."""
        await self._commands.start_app(app, timeout, instance)

    async def stop_app(self, app: str | None, instance: int | None = None) -> None:
        """Stop one app or all (or one `instance`, drained first); see `Commands.stop_app`."""
        await self._commands.stop_app(app, instance)

    async def restart_app(self, app: str | None, timeout: float) -> None:
        """Restart one app or all, rolling the routed ones; see `Commands.restart_app`."""
        await self._commands.restart_app(app, timeout)

    async def scale_app(self, app: str, count: int, timeout: float) -> None:
        """Run `count` instances of `app`; see `Commands.scale_app`."""
        await self._commands.scale_app(app, count, timeout)

    async def roll_app(self, app: str, timeout: float) -> None:
        """Replace the instances of `app` with no drop in capacity; see `Commands.roll_app`."""
        await self._commands.roll_app(app, timeout)

    def signal_app(self, app: str | None, sig: int) -> list[tuple[str, int, int]]:
        """Send `sig` to every instance of one app or all; see `Commands.signal_app`."""
        return self._commands.signal_app(app, sig)

    async def wait_started(self, app: str | None) -> None:
        """Wait until every instance takes traffic or has failed; see `Commands.wait_started`."""
        await self._commands.wait_started(app)

    async def _trim_once_started(self) -> None:
        with contextlib.suppress(ControlError):  # an app that failed to start: trim anyway
            await self.wait_started(None)
        release_free_memory()

    def check_running(self) -> None:
        """A change under way stops starting processes once the daemon is stopping (nobody
        would stop them)."""
        if self._stopping is not None and self._stopping.is_set():
            raise ControlError("the daemon is stopping")

    async def reload(self) -> ReloadResult:
        """Re-read the config file and bring every app to what it says (see `Reloader`).
        A bad file changes nothing; an app that fails is reported and left as it was."""
        async with self._commands.lock(), self._systemd.reloading():
            new = await self._reloader.load()
            self._table.reserve_ports(new)
            result = await self._reloader.apply(new)
            self._table.reorder(self.config)
            self._certs.sync(self.config)  # new route hosts get certificates
            await self._proxy.sync_async(new)
            self._triggers.sync(self.config.apps)
            self.events.emit(EventKind.CONFIG_RELOADED, describe_reload(result))
            release_free_memory()
            return result

    def _switch_to(self, config: Config) -> None:
        """Make `config` the one in force (a reload's new file, less the apps that failed)
        and publish its routes."""
        self.config = config
        self._registry.configure(config)
        self._pool.track_readiness()
        self._publish()

    def request_shutdown(self) -> None:
        """Begin a graceful stop of every app and then of the daemon."""
        if self._stopping is not None:
            self._stopping.set()

    def log_paths(self, app: str) -> tuple[Path, Path]:
        """The stdout and stderr log files of an app."""
        cfg = self._programs[app].app
        assert cfg.stdout_log is not None and cfg.stderr_log is not None
        return cfg.stdout_log, cfg.stderr_log

    def follow_logs(self, app: str, callback: Callable[[str, bytes], None]) -> Callable[[], None]:
        """Send an app's new output to `callback` until the returned function is called."""
        return self._output.follow(app, callback)

    # -- internals ----------------------------------------------------------------------------

    def _on_change(self, instance: Instance, old: State, new: State) -> None:
        detail = change_detail(instance, old, new, asyncio.get_running_loop().time())
        log.info("%s: %s -> %s%s", instance.name, old.value, new.value, detail)
        emit_state_change(self.events, instance, old, new, detail)
        self._notifier.notify()
        self._order.poke()
        if new in (State.STARTING, State.STOPPED, State.EXITED, State.BACKOFF, State.FATAL):
            self._table.schedule_record()
        name = instance.app.name
        if name == PROXY_APP and new == State.FATAL:
            self._proxy.fatal(instance)
        if State.RUNNING in (old, new) and name != PROXY_APP:
            self._pool.running_changed(instance, old, new)
            self._schedule_publish()

    # -- the proxy ----------------------------------------------------------------------------

    def _on_report(self) -> None:
        """A proxy worker reported (or left): wake whoever waits; say what it ejected."""
        self._notifier.notify()
        self._ejections.update(self.events, self._publisher.backend_totals())

    def _on_health(self, target: Target, up: bool, error: str) -> None:
        service, host, port = target
        kind, text = (EventKind.HEALTH_UP, "up") if up else (EventKind.HEALTH_DOWN,
                                                               f"down: {error}")
        self.events.emit(kind, text, service=service, backend=format_address(host, port))

    def _pool_changed(self) -> None:
        """A readiness or health check changed its mind: publish, and wake whoever waits."""
        self._schedule_publish()
        self._notifier.notify()
        self._order.poke()

    def _schedule_publish(self) -> None:
        self._registry.schedule_publish()

    def _publish(self) -> None:
        """Send the proxy workers a snapshot of the routes and the instances ready now."""
        self._registry.publish()

    def _on_serving(self, serving: dict[str, list[Instance]]) -> None:
        """At each publish: the routed instances in the pool, for the events."""
        self._pool_watch.update(self.events, (i for instances in serving.values()
                                              for i in instances))
        self._cluster.want(i for instances in serving.values() for i in instances)

    def _tls(self, config: Config) -> Tls:
        """The TLS part of the snapshot: the file certificates read with `config`."""
        keys = self._tickets.keys(time.monotonic()) if config.proxy and config.proxy.listen_tls \
            else ()
        return build_tls(config, *self._certs.material(), ticket_keys=keys)

    async def _rotate_tickets_forever(self) -> None:
        """Publish when the session-ticket key is due for rotation (see `TicketKeys`)."""
        while True:
            wait = self._tickets.next_rotation() - time.monotonic()
            await asyncio.sleep(min(3600.0, max(1.0, wait)))
            if time.monotonic() >= self._tickets.next_rotation():
                self._schedule_publish()

    def _publish_now(self) -> int:
        """Publish now (the certificate manager's challenges wait for it); the version."""
        return self._registry.publish()

    def _unwatched(self, app: AppConfig) -> list[Path]:
        """What a watch of `app` never reacts to: logs and the daemon's state directory."""
        return [self.config.daemon.state_dir, *(p for p in (app.stdout_log, app.stderr_log)
                                                 if p is not None)]

def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one: each instance holds three descriptors,
    and the common soft default of 1024 would make the 341st instance fail (supervisord raises
    it too, with `minfds`)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
