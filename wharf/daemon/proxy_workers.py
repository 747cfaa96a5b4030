"""The proxy workers as the daemon supervises them: the program that runs them (a Program
named `PROXY_APP`, never routed to), started, scaled or removed as the config's `[proxy]`
says, and when each one listens on every address of the config (it binds them after its
first snapshot, a moment after it counts as RUNNING; /proc is read once per worker).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from wharf.config import AppConfig, Config
from wharf.config.load import PROXY_APP
from wharf.observability.procfs import listens_on
from wharf.proxy import DRAIN_TIMEOUT
from wharf.registry.publisher import Publisher
from wharf.supervise.instance import Instance
from wharf.supervise.program import Program
from wharf.supervise.spawner import Spawner
from wharf.supervise.states import State

log = logging.getLogger("wharf")


class ProxyWorkers:
    """The proxy workers' program in the daemon's table of programs."""

    def __init__(self, programs: dict[str, Program], config: Callable[[], Config],
                 publisher: Publisher, spawner: Spawner,
                 add: Callable[[AppConfig], Program],
                 remove: Callable[[str], Awaitable[None]],
                 publish: Callable[[], object]) -> None:
        self._programs = programs  # the daemon's, shared: the workers are one of them
        self._config = config  # the config in force
        self._publisher = publisher
        self._spawner = spawner
        self._add = add
        self._remove = remove
        self._publish = publish
        # (worker pid, listen addresses) seen listening: /proc is read once per worker.
        self._listening: set[tuple[int, tuple[tuple[str, int], ...]]] = set()

    def __repr__(self) -> str:
        program = self._programs.get(PROXY_APP)
        return f"<ProxyWorkers {len(program.instances) if program else 0}>"

    def app_config(self, config: Config) -> AppConfig:
        """The workers' program as `config` asks for it."""
        assert config.proxy is not None
        logs = config.daemon.state_dir / "logs"
        return AppConfig(
            command=(sys.executable, "-m", "wharf.proxy.worker", str(self._publisher.path)),
            name=PROXY_APP, cwd=config.path.parent, instances=config.proxy.workers,
            startsecs=0.5, stop_timeout=DRAIN_TIMEOUT + 2.0,
            stdout_log=logs / f"{PROXY_APP}.out.log", stderr_log=logs / f"{PROXY_APP}.err.log")

    def fatal(self, instance: Instance) -> None:
        """Say loudly that a proxy worker gave up: nothing else would tell the user why every
        request is refused."""
        serving = [i for i in self._programs[PROXY_APP].instances if i.state == State.RUNNING]
        down = f"{len(serving)} other worker(s) still serve" if serving else "the proxy is down"
        log.error("wharf: %s: %s is FATAL (%s); its output is in %s and %s; `wharf restart %s`"
                  " tries again", down, instance.name, instance.machine.reason or "gave up",
                  instance.app.stdout_log, instance.app.stderr_log, PROXY_APP)

    def sync(self, config: Config) -> None:
        """Publish the snapshot of `config`; start the workers if there are none yet."""
        self._publish()
        if config.proxy is not None and PROXY_APP not in self._programs:
            self._add(self.app_config(config)).start()

    async def sync_async(self, config: Config) -> None:
        """After a reload: as `sync`, and scale or remove the workers as `config` says."""
        program = self._programs.get(PROXY_APP)
        if config.proxy is None:
            if program is not None:
                await self._remove(PROXY_APP)
            return
        if program is not None and program.app.instances != config.proxy.workers:
            await program.scale(config.proxy.workers)
        self.sync(config)

    def reopen_logs(self) -> None:
        """SIGUSR1 to every worker: it reopens its access log (nginx's USR1, for logrotate)."""
        proxy = self._programs.get(PROXY_APP)
        for instance in proxy.instances if proxy else ():
            if instance.pid is not None:
                self._spawner.signal_group(instance.pid, signal.SIGUSR1)

    def listens(self, worker: Instance) -> bool:
        """True once a proxy worker listens on every address of the config (it binds them
        after its first snapshot, a moment after it counts as RUNNING)."""
        proxy = self._config().proxy
        if proxy is None or worker.pid is None:
            return False
        addresses = proxy.listen + proxy.listen_tls
        key = (worker.pid, addresses)
        if key not in self._listening:
            if not all(listens_on([worker.pid], host, port)
                       for host, port in addresses if _is_ip(host)):
                return False
            self._listening.add(key)
        return True

    async def served(self, version: int, timeout: float) -> bool:
        """Wait until a proxy worker listens and every worker serves `version` (False after
        `timeout`): an ACME challenge must be answerable before the CA looks. Polled: a
        worker's first bind wakes nobody."""
        deadline = asyncio.get_running_loop().time() + timeout
        proxy = self._programs.get(PROXY_APP)
        while not (proxy is not None and any(i.state == State.RUNNING and self.listens(i)
                                             for i in proxy.instances)
                   and self._publisher.serving(version)):
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def _is_ip(host: str) -> bool:
    """True for an IP literal (a name such as localhost is bound as its lookup says)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
