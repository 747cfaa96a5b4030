"""The daemon as a systemd service (`Type=notify`): when it is ready, reloading, stopping, what
it runs (STATUS=), and the watchdog pings.

- READY=1 once every app has started and takes traffic, or has failed: the moment `wharf up -d`
  returns. An app that failed does not hold the daemon back (it is a state, shown in STATUS=
  and `wharf status`), as `up -d` prints its table either way.
- A reload (SIGHUP, `wharf reload`, `systemctl reload`, supervisorctl's update) is framed by
  RELOADING=1 and READY=1, whether it changed anything or was refused.
- WATCHDOG=1 every WATCHDOG_USEC/2, sent by a task of the daemon's own loop: a loop that is
  stuck stops the pings, and systemd restarts the service (Restart=on-failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from wharf.daemon.sdnotify import Notifier
from wharf.errors import WharfError

log = logging.getLogger("wharf")

STATUS_INTERVAL = 5.0  # seconds between looks at whether STATUS= has changed


class ServiceManager:
    """Keeps systemd told; every method does nothing when systemd is not listening."""

    def __init__(self, notifier: Notifier, status: Callable[[], str]) -> None:
        self._notifier = notifier
        self._status = status
        self._last_status = ""

    def __repr__(self) -> str:
        return f"<ServiceManager {self._notifier!r}>"

    @property
    def enabled(self) -> bool:
        """True when run by systemd with Type=notify."""
        return self._notifier.enabled

    async def run(self, started: Awaitable[None]) -> None:
        """Say READY=1 once `started` is done, then ping the watchdog and keep STATUS= current
        until cancelled."""
        try:
            await started
        except WharfError as exc:  # some app failed: the daemon itself is ready
            log.debug("wharf: ready, with failures: %s", exc)
        self.ready()
        interval = self._notifier.watchdog_interval
        tick = min(interval, STATUS_INTERVAL) if interval else STATUS_INTERVAL
        loop = asyncio.get_running_loop()
        next_ping = loop.time()
        while True:
            if interval is not None and loop.time() >= next_ping:
                self._notifier.send(WATCHDOG=1)
                next_ping = loop.time() + interval
            self._update_status()
            await asyncio.sleep(tick)

    def ready(self) -> None:
        """READY=1, with the status line."""
        if self.enabled:
            self._last_status = self._status()
            self._notifier.ready(self._last_status)

    @contextlib.asynccontextmanager
    async def reloading(self) -> AsyncIterator[None]:
        """RELOADING=1 before the block, READY=1 after it, however it ends (async: it sits in
        the same `async with` as the daemon's change lock)."""
        self._notifier.reloading()
        try:
            yield
        finally:
            self.ready()

    def stopping(self) -> None:
        """STOPPING=1."""
        self._notifier.stopping()

    def close(self) -> None:
        """Close the notify socket."""
        self._notifier.close()

    def _update_status(self) -> None:
        status = self._status()
        if status != self._last_status:
            self._last_status = status
            self._notifier.send(STATUS=status)


def status_line(rows: Iterable[dict[str, Any]], proxy_app: str) -> str:
    """"3 apps, 7 instances running" (and how many failed), from the instance status rows."""
    apps: set[str] = set()
    running = failed = 0
    for row in rows:
        if row.get("kind") != "instance" or row["app"] == proxy_app:
            continue
        apps.add(row["app"])
        running += row["state"] == "RUNNING"
        failed += row["state"] in ("FATAL", "BACKOFF")
    line = f"{len(apps)} app{'s' * (len(apps) != 1)}, {running} " \
        f"instance{'s' * (running != 1)} running"
    return line + (f", {failed} failed" if failed else "")
