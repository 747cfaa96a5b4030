"""The daemon's table of programs: the file's apps in its order, then the proxy workers.

Adding a program gives it its ports, output and shared socket; removing one drains it out of
the pool first and frees what it held. The processes it has are written down at each start
and exit (see `leftovers`), so that a daemon killed with SIGKILL leaves none unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from wharf.config import AppConfig, Config
from wharf.config.load import PROXY_APP
from wharf.daemon.leftovers import Recorder
from wharf.daemon.output import OutputRouter
from wharf.daemon.pool import Pool
from wharf.daemon.start_order import StartOrder
from wharf.supervise.instance import Instance
from wharf.supervise.logs import Clock
from wharf.supervise.ports import PortAllocator
from wharf.supervise.program import Notifier, Program
from wharf.supervise.sockets import SharedSockets
from wharf.supervise.spawner import Spawner, kill_group
from wharf.supervise.states import State

OnChange = Callable[[Instance, State, State], None]


class ProgramTable:
    """The programs by name, shared with the daemon's other parts (as `programs`)."""

    def __init__(self, programs: dict[str, Program], spawner: Spawner, ports: PortAllocator,
                 output: OutputRouter, clock: Clock, notifier: Notifier,
                 sockets: SharedSockets, on_change: OnChange, pool: Callable[[], Pool],
                 order: Callable[[], StartOrder]) -> None:
        self.programs = programs
        self._spawner = spawner
        self._ports = ports
        self._output = output
        self._clock = clock
        self._notifier = notifier
        self._sockets = sockets
        self._on_change = on_change
        self._pool = pool  # made after this table: it asks who serves
        self._order = order  # made after this table: it asks which apps there are
        self._recorder: Recorder | None = None
        self._record_scheduled = False

    def __repr__(self) -> str:
        return f"<ProgramTable {list(self.programs)}>"

    def start_recording(self, path: Path) -> None:
        """Write the processes down in `path` from now on."""
        self._recorder = Recorder(path)

    def reorder(self, config: Config) -> None:
        """After a reload: the apps of `config` in its order, then the workers (in place: the
        daemon's parts share the table)."""
        proxy = self.programs.get(PROXY_APP)
        kept = {n: self.programs[n] for n in config.apps}
        if proxy is not None:
            kept[PROXY_APP] = proxy
        self.programs.clear()
        self.programs.update(kept)

    def apps(self) -> dict[str, Program]:
        """The programs of the file's apps (the proxy workers aside)."""
        return {n: p for n, p in self.programs.items() if n != PROXY_APP}

    def add(self, app: AppConfig) -> Program:
        """Make the program of `app` (stopped) and put it in the table."""
        self._output.configure(app)
        ports = None if app.name == PROXY_APP else self._ports
        program = Program(app, self._spawner, ports, self._output, self._clock,
                          self._notifier, self._on_change, self._sockets.listen_fd(app))
        self.programs[app.name] = program
        return program

    async def remove(self, name: str) -> None:
        """Drain an app out of the pool (its requests in flight finish), then stop it."""
        program = self.programs.get(name)
        if program is None:
            return
        leaving = program.instances if name != PROXY_APP else []  # no route to the proxy
        self._order().cancel([name])
        async with self._pool().out_of_pool(program, leaving):
            del self.programs[name]
            await program.stop_and_wait()
        program.release_ports()
        self._output.remove(name)
        self.close_unused_sockets()

    def close_unused_sockets(self) -> None:
        """Close the shared sockets that no instance serves any more, nor the next ones."""
        self._sockets.close_unused(
            [i.app.socket for p in self.programs.values() for i in p.processes()]
            + [p.app.socket for p in self.programs.values()])

    def reserve_ports(self, config: Config) -> None:
        """Keep the fixed ports of `config`'s apps out of the ones given to the others."""
        self._ports.reserved = frozenset(
            app.port + i for app in config.apps.values() if app.port is not None
            for i in range(app.instances))

    def kill_everything(self) -> None:
        """SIGKILL every process group (a second signal, or the end of a stop)."""
        for program in self.programs.values():
            for instance in program.processes():
                if instance.pid is not None:
                    kill_group(self._spawner, instance.pid)

    def schedule_record(self) -> None:
        """Record the processes once this loop turn is over (see `record`)."""
        if not self._record_scheduled:
            self._record_scheduled = True
            asyncio.get_running_loop().call_soon(self.record)

    def record(self) -> None:
        """Write down every process this daemon has now (see `leftovers`)."""
        self._record_scheduled = False
        if self._recorder is None:
            return
        children = [(i.name, i.pid) for p in self.programs.values() for i in p.processes()
                    if i.pid is not None]
        if children:
            self._recorder.write(children)
        else:
            self._recorder.remove()
