"""Active health checks, run once by the daemon for every worker, as HAProxy runs them.

`HealthState` is the pure part: `rise` passes in a row bring a backend up, `fall` failures in a
row take it down. A backend starts down and enters the pool only once it has passed. The
`HealthChecker` drives one asyncio task per (service, host, port): an HTTP GET of the configured
path whose status must fall in the expected range, or a plain TCP connect; and it reports
every change of state, so the daemon publishes a snapshot without the backends that are down.
A backend on a Unix socket is checked over it, with `Host: localhost` (as nginx sends there).
A target is named by its service's stable name and its address, not by the backend's weight
or its route's position, so a reload that changes either keeps what the checks have learnt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from wharf.addresses import format_address, unix_path
from wharf.config.model import HealthConfig
from wharf.registry.build import Target
from wharf.registry.snapshot import Backend

log = logging.getLogger("wharf.health")


class HealthState:
    """Rise and fall counting for one backend."""

    def __init__(self, rise: int, fall: int) -> None:
        self.rise = rise
        self.fall = fall
        self.up = False
        self._streak = 0  # passes in a row while down, failures in a row while up
        self.last_error = "not checked yet"

    def __repr__(self) -> str:
        return f"<HealthState {'up' if self.up else 'down'} streak={self._streak}>"

    def record(self, ok: bool, error: str = "") -> bool:
        """Count one check; True if the backend just went up or down."""
        if not ok:
            self.last_error = error
        if ok != self.up:
            self._streak += 1
            if self._streak >= (self.rise if ok else self.fall):
                self.up = ok
                self._streak = 0
                if ok:
                    self.last_error = ""
                return True
        else:
            self._streak = 0
        return False


@dataclass(slots=True)
class _Check:
    config: HealthConfig
    state: HealthState
    task: asyncio.Task[None] | None = None


async def probe(backend: Backend, config: HealthConfig) -> str:
    """Check a backend once: "" if it passes, else what went wrong."""
    path = unix_path(backend.host, backend.port)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(backend.host, backend.port) if path is None
            else asyncio.open_unix_connection(path), config.timeout)
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "timeout"
        return f"connect: {reason}"
    try:
        if config.path is None:
            return ""
        host = "localhost" if path is not None else format_address(backend.host, backend.port)
        writer.write(f"GET {config.path} HTTP/1.1\r\nHost: {host}\r\n"
                     "User-Agent: wharf-health\r\nConnection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), config.timeout)
        parts = line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            return "not an HTTP response"
        status = int(parts[1])
        low, high = config.status
        return "" if low <= status <= high else f"status {status}"
    except (OSError, TimeoutError) as exc:
        return f"check failed: {exc or 'timeout'}"
    except ValueError:  # a status line longer than the reader's limit
        return "not an HTTP response"
    finally:
        writer.close()


class HealthChecker:
    """Keeps one check running per target; calls `on_change` when a backend goes up or down."""

    def __init__(self, on_change: Callable[[], None],
                 on_transition: Callable[[Target, bool, str], None] | None = None) -> None:
        self._on_change = on_change
        self._on_transition = on_transition  # (target, up, last error): for the events
        self._checks: dict[Target, _Check] = {}

    def __repr__(self) -> str:
        up = sum(1 for c in self._checks.values() if c.state.up)
        return f"<HealthChecker targets={len(self._checks)} up={up}>"

    def sync(self, targets: dict[Target, HealthConfig]) -> None:
        """Check exactly these targets from now on (new ones start down)."""
        for target in [t for t in self._checks if t not in targets]:
            check = self._checks.pop(target)
            if check.task is not None:
                check.task.cancel()
        for target, config in targets.items():
            old = self._checks.get(target)
            if old is not None and old.config == config:
                continue
            if old is not None and old.task is not None:
                old.task.cancel()
            check = _Check(config, HealthState(config.rise, config.fall))
            check.task = asyncio.get_running_loop().create_task(self._run(target, check))
            self._checks[target] = check

    def down(self) -> frozenset[Target]:
        """The targets not up now."""
        return frozenset(t for t, c in self._checks.items() if not c.state.up)

    def states(self) -> dict[Target, HealthState]:
        """Every target's state (for status)."""
        return {t: c.state for t, c in self._checks.items()}

    def close(self) -> None:
        """Stop every check."""
        for check in self._checks.values():
            if check.task is not None:
                check.task.cancel()
        self._checks.clear()

    async def _run(self, target: Target, check: _Check) -> None:
        service, host, port = target
        backend = Backend(host, port)
        while True:
            error = await probe(backend, check.config)
            if check.state.record(not error, error):
                word = "up" if check.state.up else f"down ({error})"
                log.info("%s %s: %s", service, format_address(host, port), word)
                if self._on_transition is not None:
                    self._on_transition(target, check.state.up, error)
                self._on_change()
            await asyncio.sleep(check.config.interval)
