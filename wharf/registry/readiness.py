"""Readiness: an instance of an app that a route sends to joins the pool only once it answers.

Each RUNNING instance is probed on its PORT - a TCP connect, or a GET of the app's
`ready_path` with a 2xx/3xx answer - every PROBE_INTERVAL until it passes or `ready_timeout`
runs out (then it stays out of the pool, and says why). A restarted process starts over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from wharf.config.model import AppConfig, HealthConfig
from wharf.registry.build import LOCALHOST
from wharf.registry.health import probe
from wharf.registry.snapshot import Backend

log = logging.getLogger("wharf.ready")

PROBE_INTERVAL = 0.05  # fast: a new instance should take traffic as soon as it can
Key = tuple[str, int, int]  # (app, instance index, pid)


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
            self._probe(key, app, port))

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

    async def _probe(self, key: Key, app: AppConfig, port: int) -> None:
        config = HealthConfig(path=app.ready_path, timeout=1.0, status=(200, 399))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + app.ready_timeout
        error = ""
        try:
            while loop.time() < deadline:
                error = await probe(Backend(LOCALHOST, port), config)
                if not error:
                    self._ready.add(key)
                    self._on_ready()
                    return
                await asyncio.sleep(PROBE_INTERVAL)
            self.failures[key[:2]] = f"not ready after {app.ready_timeout:g}s: {error}"
            log.warning("%s.%d: %s", key[0], key[1], self.failures[key[:2]])
            self._on_ready()  # a change too: whoever waits for this instance may stop waiting
        finally:
            self._probes.pop(key, None)
