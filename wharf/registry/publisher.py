"""Pushes snapshots to the proxy workers over a Unix socket in the state directory.

A worker connects, receives the current snapshot at once, whole, then every newer one as a
delta against the one it was sent last (`delta`), each as one length-prefixed frame (see
`frames`: no size cap but MAX_FRAME). Only the newest snapshot matters, so a worker that reads
slowly skips the ones published meanwhile: its next delta spans them all, and the daemon holds
at most one unsent frame per worker, whatever the rate of publishing. A frame is encoded once
for every worker that needs it (they mostly have the same snapshot), and only when one does.
Each worker reports back (see `reports`) what it alone knows of the backends: requests in
flight, ejections, last error.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from wharf.observability.traffic import TrafficTotals
from wharf.registry.delta import diff
from wharf.registry.frames import FrameError, frame, read_frame
from wharf.registry.reports import Key, WorkerReport
from wharf.registry.snapshot import Snapshot

log = logging.getLogger("wharf.registry")

# A delta that changes more than this share of the services goes as the whole snapshot: it
# would be about as large, and the worker rebuilds everything either way.
WHOLE_ABOVE: Final = 0.5


class Publisher:
    """Serves the newest snapshot to every connected worker."""

    def __init__(self, path: Path, on_report: Callable[[], None] = lambda: None) -> None:
        self.path = path
        self._on_report = on_report  # a worker reported (or left): whoever waits may look
        self._current: Snapshot | None = None  # the newest snapshot
        self._whole: bytes | None = None  # it, framed, once a worker needed it whole
        self._deltas: dict[int, tuple[Snapshot, bytes]] = {}  # base version -> (base, frame)
        self._wake: dict[asyncio.StreamWriter, asyncio.Event] = {}  # set: a newer one to send
        self._server: asyncio.AbstractServer | None = None
        self.reports: dict[asyncio.StreamWriter, WorkerReport] = {}  # each worker's, summed
        self.traffic = TrafficTotals()  # the workers' counters, for /metrics

    def __repr__(self) -> str:
        return f"<Publisher {self.path} workers={len(self._wake)}>"

    async def start(self) -> None:
        """Listen on the socket (mode 0600)."""
        self.path.unlink(missing_ok=True)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)

    async def close(self) -> None:
        """Disconnect every worker and remove the socket."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._wake):
            writer.close()
        self.path.unlink(missing_ok=True)

    def publish(self, snapshot: Snapshot) -> None:
        """Send `snapshot` to every worker, and to every worker that connects later."""
        self._current, self._whole = snapshot, None
        self._deltas.clear()
        for wake in self._wake.values():
            wake.set()

    def serving(self, version: int) -> bool:
        """True when every connected worker has said it serves `version` or newer."""
        return all(self.reports[w].version >= version for w in self._wake)

    def backend_totals(self) -> dict[Key, dict[str, Any]]:
        """What every worker last said of each (service, host, port): requests in flight
        summed, ejected if any worker ejected it, the first last error. A backend that no
        worker has news of is absent."""
        totals: dict[Key, dict[str, Any]] = {}
        for report in self.reports.values():
            for key, (inflight, ejected, error) in report.backends.items():
                total = totals.setdefault(key, {"inflight": 0, "ejected": False,
                                                "last_error": ""})
                total["inflight"] += inflight
                total["ejected"] = total["ejected"] or ejected
                total["last_error"] = total["last_error"] or error
        return totals

    def inflight(self, host: str, port: int) -> int:
        """Requests in flight to a backend, over every worker, as they last reported."""
        return sum(state[0] for report in self.reports.values()
                   for key, state in report.backends.items() if key[1:] == (host, port))

    def _take_traffic(self, conn_id: int, report: WorkerReport) -> None:
        if report.traffic is not None:
            try:
                self.traffic.apply(conn_id, report.traffic)
            except (ValueError, TypeError, KeyError, IndexError):
                log.warning("wharf: a proxy worker sent traffic counters that are not ones")

    async def _feed(self, writer: asyncio.StreamWriter, wake: asyncio.Event) -> None:
        # A zero high-water mark makes drain() wait until the kernel took the whole snapshot:
        # snapshots published meanwhile only set `wake`, and the newest goes next.
        writer.transport.set_write_buffer_limits(high=0)
        sent: Snapshot | None = None  # what the worker has, once it read what was written
        try:
            while True:
                await wake.wait()
                wake.clear()
                current = self._current
                if current is not None and current is not sent:
                    writer.write(self.frame_for(sent))
                    sent = current
                    await writer.drain()
        except ConnectionError:
            pass  # the worker went away; _serve sees it too

    def frame_for(self, sent: Snapshot | None) -> bytes:
        """The frame that brings a worker that has `sent` (None: nothing yet) to the newest
        snapshot: a delta, or the whole snapshot."""
        current = self._current
        assert current is not None
        if sent is not None:
            cached = self._deltas.get(sent.version)
            if cached is not None and cached[0] is sent:
                return cached[1]
            delta = diff(sent, current)
            if delta.size() <= WHOLE_ABOVE * max(1, len(current.services)):
                framed = frame(delta.to_json())
                self._deltas[sent.version] = (sent, framed)
                return framed
        if self._whole is None:
            self._whole = frame(current.to_json())
        return self._whole

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        wake = self._wake[writer] = asyncio.Event()
        wake.set()
        self.reports[writer] = report = WorkerReport()
        feed = asyncio.get_running_loop().create_task(self._feed(writer, wake))
        try:
            while (payload := await read_frame(reader)) is not None:
                if report.apply(payload):
                    self._take_traffic(id(writer), report)
                    self._on_report()
                else:
                    log.warning("wharf: a proxy worker sent a report that is not one")
        except FrameError as exc:
            log.warning("wharf: disconnecting a proxy worker: %s", exc)
        except ConnectionError:
            pass
        finally:
            feed.cancel()
            self._wake.pop(writer, None)
            self.reports.pop(writer, None)
            self.traffic.worker_gone(id(writer))
            writer.close()
            self._on_report()
