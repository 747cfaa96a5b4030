"""Readiness: an instance of an app that a route sends to joins the pool only once it answers.

Each RUNNING instance is probed at the address it serves (`instance_address`: 127.0.0.1:PORT,
or its app's socket) - a TCP connect, or a GET of the app's `ready_path` with a 2xx/3xx answer -
every PROBE_INTERVAL until it passes or `ready_timeout` runs out (then it stays out of the pool,
and says why). A restarted process starts over.

An answer proves nothing unless it comes from the instance: an orphan of a daemon killed with
SIGKILL may still listen on the port, and the new instance, unable to bind it, would pass. So
an instance on its own port is ready only once a process of its tree listens there. In socket
mode the daemon holds the listening socket and every instance inherits it, so the kernel's
backlog would answer a connect for any of them: there an instance is ready once its tree holds
the accepted end of one of the probe's connections (a sibling that takes it means another try),
and then passes the HTTP check if the app has `ready_path`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from wharf.addresses import unix_path
from wharf.config.model import AppConfig, HealthConfig
from wharf.observability.procfs import accepted, listener_on, listens_on, process_tree
from wharf.registry.build import instance_address
from wharf.registry.health import probe
from wharf.registry.snapshot import Backend

log = logging.getLogger("wharf.ready")

PROBE_INTERVAL = 0.05  # fast: a new instance should take traffic as soon as it can
Key = tuple[str, int, int]  # (app, instance index, pid)
NOT_ITS_OWN = "answered by another process than this instance"
NOT_ACCEPTED = "has not accepted a connection on its socket"
# How long a probe's connection waits to be accepted by the instance, looking every ACCEPT_LOOK.
ACCEPT_WAIT = 0.5
ACCEPT_LOOK = 0.02


class Readiness:
    """Which running instances have answered, and the probes of those not yet."""

    def __init__(self, on_ready: Callable[[], None]) -> None:
        self._on_ready = on_ready
        self._ready: set[Key] = set()
        self._probes: dict[Key, asyncio.Task[None]] = {}
        self.failures: dict[tuple[str, int], str] = {}  # (app, index) -> why it is not ready

    def __repr__(self) -> str:
        return f"<Readiness ready={len(self._ready)} probing={len(self._probes)}>"

    def is_ready(self, app: str, index: int, pid: int | None) -> bool:
        """True if this process of this instance has passed its readiness check."""
        return pid is not None and (app, index, pid) in self._ready

    def track(self, app: AppConfig, index: int, pid: int, port: int) -> None:
        """Start probing a process that has just become RUNNING."""
        key = (app.name, index, pid)
        if key in self._ready or key in self._probes:
            return
        self.failures.pop((app.name, index), None)
        self._probes[key] = asyncio.get_running_loop().create_task(
            self._probe(key, app, port, pid))

    def forget(self, app: str, index: int, pid: int) -> None:
        """That process left RUNNING: the instance's next process must pass again. (During a
        rolling reload two processes share an index; each is forgotten on its own.)"""
        key = (app, index, pid)
        self._ready.discard(key)
        task = self._probes.pop(key, None)
        if task is not None:
            task.cancel()

    def close(self) -> None:
        """Stop every probe."""
        for task in self._probes.values():
            task.cancel()
        self._probes.clear()

    async def _probe(self, key: Key, app: AppConfig, port: int, pid: int) -> None:
        config = HealthConfig(path=app.ready_path, timeout=1.0, status=(200, 399))
        host, port = instance_address(app, port)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + app.ready_timeout
        error = ""
        try:
            while loop.time() < deadline:
                error = await _accepts(pid, host, port) if app.socket is not None else ""
                error = error or await probe(Backend(host, port), config)
                if not error and app.socket is None and not await asyncio.to_thread(
                        _its_own, pid, host, port):
                    error = NOT_ITS_OWN
                if not error:
                    self._ready.add(key)
                    self._on_ready()
                    return
                await asyncio.sleep(PROBE_INTERVAL)
            if error == NOT_ITS_OWN:  # name the intruder once, not at every probe
                holder = await asyncio.to_thread(listener_on, host, port)
                error = f"{host}:{port} is answered by {holder or 'another process'}, not by " \
                    "this instance"
            self.failures[key[:2]] = f"not ready after {app.ready_timeout:g}s: {error}"
            log.warning("%s.%d: %s", key[0], key[1], self.failures[key[:2]])
            self._on_ready()  # a change too: whoever waits for this instance may stop waiting
        finally:
            self._probes.pop(key, None)


def _its_own(pid: int, host: str, port: int) -> bool:
    """True if a process of `pid`'s tree listens on `host:port` (it reads /proc: run it in a
    thread)."""
    return listens_on(process_tree(pid), host, port)


async def _accepts(pid: int, host: str, port: int) -> str:
    """"" once `pid`'s tree holds a connection it accepted on the shared socket at `host:port`
    or a Unix socket (the probe's own, held open meanwhile, or the proxy's); else why not."""
    if await asyncio.to_thread(_accepted, pid, host, port):
        return ""
    path = unix_path(host, port)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port) if path is None
            else asyncio.open_unix_connection(path), ACCEPT_WAIT)
    except (OSError, TimeoutError) as exc:
        return f"connect: {exc.strerror if isinstance(exc, OSError) else 'timeout'}"
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ACCEPT_WAIT
        while loop.time() < deadline:
            await asyncio.sleep(ACCEPT_LOOK)
            if await asyncio.to_thread(_accepted, pid, host, port):
                return ""
        return NOT_ACCEPTED
    finally:
        writer.close()


def _accepted(pid: int, host: str, port: int) -> bool:
    return accepted(process_tree(pid), host, port)
