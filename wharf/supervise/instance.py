"""The asyncio driver of one process: performs the machine's actions and feeds it events.

The machine decides; this module only spawns, signals, watches the pidfd and the output pipes,
and arms the one timer the machine asks for. Every state change is reported to `on_change`.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from wharf.addresses import bind_error, format_address, unix_path
from wharf.config.model import AppConfig
from wharf.observability.procfs import listener_on
from wharf.supervise.logs import Clock, LineSplitter
from wharf.supervise.machine import Action, Machine, Policy
from wharf.supervise.spawner import Child, Spawner, SpawnError, SpawnSpec, kill_group
from wharf.supervise.states import State

READ_SIZE = 65536
LOCALHOST = "127.0.0.1"  # where the proxy reaches an app on its own port


class Output(Protocol):
    """Where captured lines go: `stream` is "out" or "err", `data` whole prefixed lines."""

    def write(self, app: str, stream: str, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    """A snapshot of one instance, as `status` shows it."""

    app: str
    instance: int
    port: int
    pid: int | None
    state: str
    uptime_s: float | None
    restarts: int
    exit_code: int | None
    exit_signal: int | None
    reason: str
    last_restart: str
    next_try_in_s: float | None = None  # in BACKOFF: seconds until the next start


def policy_of(app: AppConfig) -> Policy:
    """The lifecycle settings of an app."""
    return Policy(autorestart=app.autorestart, exit_codes=app.exit_codes,
                  startsecs=app.startsecs, startretries=app.startretries, backoff=app.backoff,
                  backoff_max=app.backoff_max, stop_signal=app.stop_signal,
                  stop_timeout=app.stop_timeout)


def spawn_spec(app: AppConfig, index: int, port: int,
               listen_fd: int | None = None) -> SpawnSpec:
    """The argv and environment of instance `index` of `app`. `{socket}` is the shared
    socket as a server's `--bind` takes it: `host:port`, or a Unix socket's path (gunicorn's
    `--bind unix:{socket}`, uvicorn's `--uds {socket}`); a Unix socket has no PORT."""
    path = unix_path(*app.socket) if app.socket is not None else None
    socket = path or (format_address(*app.socket) if app.socket is not None else "")
    argv = tuple(a.replace("{port}", str(port)).replace("{instance}", str(index))
                 .replace("{socket}", socket) for a in app.command)
    env = {**os.environ, **app.env, "WHARF_APP": app.name, "WHARF_INSTANCE": str(index)}
    if path is None:
        env["PORT"] = str(port)
    assert app.cwd is not None
    return SpawnSpec(argv=argv, cwd=app.cwd, env=env, user=app.user, listen_fd=listen_fd)


class Instance:
    """One supervised process of an app."""

    def __init__(self, app: AppConfig, index: int, port: int, spawner: Spawner, output: Output,
                 clock: Clock, on_change: Callable[[Instance, State, State], None]) -> None:
        self.app = app
        self.index = index
        self.port = port
        self.machine = Machine(policy_of(app))
        self._spawner = spawner
        self._output = output
        self._clock = clock
        self._on_change = on_change
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._child: Child | None = None
        self.last_pid = 0  # of the latest process, still known after it has exited
        self.exited_pid = 0  # of the latest process that exited (its successor may run)
        self.listen_fd: int | None = None  # the app's shared socket, in socket mode

    def __repr__(self) -> str:
        return f"<Instance {self.name} pid={self.pid} {self.machine.state.value}>"

    @property
    def name(self) -> str:
        """`app.index`, as in logs and events."""
        return f"{self.app.name}.{self.index}"

    @property
    def pid(self) -> int | None:
        """The pid of the running process, if any."""
        return self._child.pid if self._child else None

    @property
    def state(self) -> State:
        """The current lifecycle state."""
        return self.machine.state

    def reconfigure(self, app: AppConfig) -> None:
        """Use `app` from the next start on (the running process is left alone)."""
        self.app = app
        self.machine.policy = policy_of(app)

    def start(self) -> None:
        """Ask the process to run."""
        self._drive(self.machine.start)

    def stop(self) -> None:
        """Ask the process to stop."""
        self._drive(self.machine.stop)

    def restart(self, why: str = "") -> None:
        """Stop the process if it runs, then start it again (`why`: the daemon's reason)."""
        self._drive(lambda now: self.machine.restart(now, why))

    def send_signal(self, sig: int) -> int | None:
        """Send `sig` to the main process, if there is one; return its pid."""
        if self._child is None:
            return None
        self._spawner.signal_process(self._child, sig)
        return self._child.pid

    def statistics(self) -> InstanceStatus:
        """A frozen snapshot for status and metrics."""
        m = self.machine
        uptime = None
        now = self._loop.time()
        if m.started_at is not None and self._child is not None:
            uptime = max(0.0, now - m.started_at)
        next_try = None
        if m.state == State.BACKOFF and m.deadline is not None:
            next_try = max(0.0, m.deadline - now)
        return InstanceStatus(
            app=self.app.name, instance=self.index, port=self.port, pid=self.pid,
            state=m.state.value, uptime_s=uptime, restarts=m.restarts,
            exit_code=m.last_exit.code if m.last_exit else None,
            exit_signal=m.last_exit.signal if m.last_exit else None, reason=m.reason,
            last_restart=m.last_restart, next_try_in_s=next_try)

    # -- driving the machine ------------------------------------------------------------------

    def _drive(self, event: Callable[[float], list[Action]]) -> None:
        self._perform(event(self._loop.time()))
        self._arm_timer()
        transitions = self.machine.transitions
        if transitions:
            self.machine.transitions = []
            for old, new in transitions:
                self._on_change(self, old, new)

    def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            if action is Action.SPAWN:
                self._spawn()
            elif action is Action.SIGNAL and self._child is not None:
                self._spawner.signal_group(self._child.pid, self.machine.policy.stop_signal)
            elif action is Action.KILL and self._child is not None:
                kill_group(self._spawner, self._child.pid)

    def _spawn(self) -> None:
        spec = spawn_spec(self.app, self.index, self.port, self.listen_fd)
        now = self._loop.time()
        taken = self._fixed_port_taken()
        if taken:
            self._perform(self.machine.spawn_refused(taken, now))
            return
        try:
            child = self._spawner.spawn(spec)
        except SpawnError as exc:
            self._perform(self.machine.spawn_failed(str(exc), now))
            return
        self._child = child
        self.last_pid = child.pid
        self._loop.add_reader(child.pidfd, self._on_exit, child)
        for fd, stream in ((child.stdout, "out"), (child.stderr, "err")):
            splitter = LineSplitter(self.name, self._clock)
            self._loop.add_reader(fd, self._on_output, fd, stream, splitter)
        self._perform(self.machine.spawned(now))

    def _fixed_port_taken(self) -> str:
        """Why the app's fixed port cannot be ours ("" if it can): someone else listens there,
        and an app that cannot bind it would only crash again and again. A leftover of this
        instance's own last process group (just killed, still dying) is a failed start, tried
        again after the backoff like any."""
        if self.app.port is None or self.app.socket is not None:
            return ""
        error = bind_error(LOCALHOST, self.port)
        if error is None or error.errno != errno.EADDRINUSE:
            return ""
        holder = listener_on(LOCALHOST, self.port)
        if holder is not None and holder.pid is not None and self.last_pid \
                and _group_of(holder.pid) == self.last_pid:
            return ""
        return f"port {self.port} is already in use by {holder or 'another process'}"

    def _arm_timer(self) -> None:
        deadline = self.machine.deadline
        if self._timer is not None and (deadline is None or self._timer.when() != deadline):
            self._timer.cancel()
            self._timer = None
        if deadline is not None and self._timer is None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._drive(self.machine.timer)

    def _on_exit(self, child: Child) -> None:
        status = self._spawner.reap(child.pid)
        if status is None:
            return  # a spurious wake-up: the process still runs
        self._loop.remove_reader(child.pidfd)
        os.close(child.pidfd)
        # Anything the app left in its group (a grandchild that ignored the signal) goes too.
        kill_group(self._spawner, child.pid)
        if self._child is child:
            self._child = None
        self.exited_pid = child.pid
        self._drive(lambda now: self.machine.exited(status, now))

    def _on_output(self, fd: int, stream: str, splitter: LineSplitter) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            lines = splitter.feed(data)
        else:
            self._loop.remove_reader(fd)
            os.close(fd)
            lines = splitter.flush()
        if lines:
            self._output.write(self.app.name, stream, lines)


def _group_of(pid: int) -> int:
    """The process group of `pid`, or 0 if it is gone."""
    try:
        return os.getpgid(pid)
    except OSError:
        return 0
