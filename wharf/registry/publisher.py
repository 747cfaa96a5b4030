"""Pushes snapshots to the proxy workers over a Unix socket in the state directory.

A worker connects, receives the current snapshot at once, then every newer one. A worker that
reads too slowly to keep up is disconnected (it reconnects and gets the newest snapshot): the
daemon never buffers without bound for it. Each worker reports back, once a second, a line of
JSON with what it alone knows of the backends (requests in flight, ejections, last error).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wharf.registry.snapshot import Snapshot

log = logging.getLogger("wharf.registry")

# A snapshot is a few KB; a worker this far behind is stuck.
MAX_BACKLOG = 4 * 1024 * 1024


class Publisher:
    """Serves the newest snapshot to every connected worker."""

    def __init__(self, path: Path, on_report: Callable[[], None] = lambda: None) -> None:
        self.path = path
        self._on_report = on_report  # a worker reported (or left): whoever waits may look
        self._current: bytes | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None
        self.reports: dict[asyncio.StreamWriter, dict[str, Any]] = {}  # each worker's latest

    def __repr__(self) -> str:
        return f"<Publisher {self.path} workers={len(self._writers)}>"

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
        for writer in list(self._writers):
            writer.close()
        self.path.unlink(missing_ok=True)

    def publish(self, snapshot: Snapshot) -> None:
        """Send `snapshot` to every worker, and to every worker that connects later."""
        self._current = snapshot.to_json()
        for writer in list(self._writers):
            self._send(writer)

    def serving(self, version: int) -> bool:
        """True when every connected worker has said it serves `version` or newer."""
        return all(self.reports.get(w, {}).get("version", -1) >= version for w in self._writers)

    def backend_totals(self) -> dict[tuple[str, str, int], dict[str, Any]]:
        """What every worker last said of each (service, host, port): requests in flight
        summed, ejected if any worker ejected it, the first last error."""
        totals: dict[tuple[str, str, int], dict[str, Any]] = {}
        for report in self.reports.values():
            for b in report.get("backends", []):
                total = totals.setdefault((b["service"], b["host"], b["port"]),
                                          {"inflight": 0, "ejected": False, "last_error": ""})
                total["inflight"] += b["inflight"]
                total["ejected"] = total["ejected"] or b["ejected"]
                total["last_error"] = total["last_error"] or b["last_error"]
        return totals

    def inflight(self, host: str, port: int) -> int:
        """Requests in flight to a backend, over every worker, as they last reported."""
        return sum(b.get("inflight", 0) for report in self.reports.values()
                   for b in report.get("backends", [])
                   if b.get("host") == host and b.get("port") == port)

    def _send(self, writer: asyncio.StreamWriter) -> None:
        assert self._current is not None
        if writer.transport.get_write_buffer_size() > MAX_BACKLOG:
            log.warning("wharf: a proxy worker is not reading its snapshots; disconnecting it")
            writer.close()
            self._writers.discard(writer)
            return
        writer.write(self._current)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self._current is not None:
            self._send(writer)
        try:
            while line := await reader.readline():
                try:
                    report = json.loads(line)
                except ValueError:
                    continue
                if isinstance(report, dict):
                    self.reports[writer] = report
                    self._on_report()
        except (ConnectionError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            self.reports.pop(writer, None)
            writer.close()
            self._on_report()
