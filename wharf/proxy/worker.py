"""A proxy worker process: takes snapshots from the daemon, listens, serves.

Run by the daemon as the supervised program `wharf-proxy` (one instance per worker). Each
worker binds the listen addresses itself with SO_REUSEPORT, so the kernel spreads connections
over the workers. It holds no authority: it serves the newest snapshot the daemon sent, and
exits when the daemon goes away. SIGTERM stops accepting, lets requests in flight finish (up to
DRAIN_TIMEOUT), then exits.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import cast

from wharf.proxy import DRAIN_TIMEOUT
from wharf.proxy.counters import TrafficWriter
from wharf.proxy.downstream import Listener
from wharf.proxy.plane import DataPlane
from wharf.proxy.server import ClientConnection
from wharf.proxy.tls import TlsContexts
from wharf.proxy.tlsconn import TlsConnection
from wharf.registry.delta import Follower
from wharf.registry.frames import frame, read_frame
from wharf.registry.reports import ReportWriter

SWEEP_INTERVAL = 0.5  # deadlines are enforced to within this (nginx's timers are as coarse)
REPORT_INTERVAL = 1.0  # how often the daemon hears of changes to in-flight requests, ejections
CLOCK_TICK = 0.1  # the data plane's clock for deadlines lags the real one by at most this
CONNECT_TIMEOUT = 10.0
# Room for many clients per worker, as nginx's worker_connections; the kernel socket backlog
# is the same as nginx's default on Linux.
BACKLOG = 511
GC_THRESHOLD = 50_000  # allocations between young-generation collections (CPython: 700)

log = logging.getLogger("wharf.proxy")


class Worker:
    """Listeners and the data plane of one worker process."""

    def __init__(self, snapshot_socket: Path) -> None:
        self._socket = snapshot_socket
        self._loop = asyncio.get_running_loop()
        self.plane = DataPlane(self._loop)
        self.plane.on_drained = self._report  # a drain waits for this
        self._servers: dict[tuple[str, int, bool], asyncio.Server] = {}  # (host, port, tls)
        self._tls: TlsContexts | None = None  # made at the first TLS listener
        self._stop = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._reports = ReportWriter()
        self._traffic = TrafficWriter()

    async def run(self) -> int:
        """Serve until SIGTERM or until the daemon goes away."""
        self._loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        self._loop.add_signal_handler(signal.SIGINT, self._stop.set)
        self._loop.add_signal_handler(signal.SIGUSR1, self.plane.access.reopen)
        reader = await self._connect()
        sweeper = self._loop.create_task(self._sweep_forever())
        reporter = self._loop.create_task(self._report_forever())
        follow = self._loop.create_task(self._follow(reader))
        stop = self._loop.create_task(self._stop.wait())
        try:
            done, _ = await asyncio.wait({follow, stop}, return_when=asyncio.FIRST_COMPLETED)
            if follow in done and follow.exception() is not None:
                print(f"wharf-proxy: {follow.exception()}", flush=True)
                return 1
            if follow in done:
                print("wharf-proxy: the daemon closed the snapshot socket; exiting", flush=True)
        finally:
            follow.cancel()
            stop.cancel()
            await self._drain()
            sweeper.cancel()
            reporter.cancel()
            self.plane.access.flush()
        return 0

    async def _connect(self) -> asyncio.StreamReader:
        deadline = self._loop.time() + CONNECT_TIMEOUT
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(str(self._socket))
                self._writer = writer  # dropping it would close the connection
                return reader
            except OSError:
                if self._loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def _follow(self, reader: asyncio.StreamReader) -> None:
        follower = Follower()
        while (payload := await read_frame(reader)) is not None:
            start = time.perf_counter()
            before = follower.snapshot
            snapshot = follower.take(payload)
            if snapshot.listen_tls or self._tls is not None:
                fresh = self._tls is None
                self._tls = self._tls or TlsContexts()
                if fresh or before is None or snapshot.tls is not before.tls:
                    self._tls.apply(snapshot.tls)
            self.plane.apply(snapshot)
            took = time.perf_counter() - start
            await self._listen(snapshot.listen, snapshot.listen_tls)
            self._report()  # at once: the daemon may be waiting to know this snapshot arrived
            # Each state change of an instance sends one: not a line for the terminal.
            if log.isEnabledFor(logging.DEBUG):
                delta = follower.delta
                log.debug("wharf-proxy: serving snapshot %d (%s, %d bytes%s) applied in "
                          "%.3f ms", snapshot.version, "whole" if delta is None else "delta",
                          len(payload), "" if delta is None else
                          f", {delta.size()} services changed", took * 1000)

    async def _listen(self, addresses: tuple[tuple[str, int], ...],
                      tls_addresses: tuple[tuple[str, int], ...] = ()) -> None:
        wanted = {(h, p, False) for h, p in addresses} | {(h, p, True) for h, p in tls_addresses}
        for key in [k for k in self._servers if k not in wanted]:
            self._servers.pop(key).close()
            print(f"wharf-proxy: stopped listening on {_url(*key)}", flush=True)
        for key in [(h, p, False) for h, p in addresses] + [(h, p, True)
                                                            for h, p in tls_addresses]:
            if key not in self._servers:
                host, port, tls = key
                listener = Listener("https" if tls else "http", None, tls, f"{host}:{port}")
                sock = listening_socket(host, port)
                # TLS is the connection's (`tlsconn`): the listener accepts plain TCP.
                server = await self._loop.create_server(
                    self._factory(listener, self._tls if tls else None), sock=sock)
                self._servers[key] = server
                print(f"wharf-proxy: listening on {_url(*key)}", flush=True)

    def _factory(self, listener: Listener,
                 tls: TlsContexts | None = None) -> Callable[[], asyncio.Protocol]:
        """The protocol factory of a listener (`tls`: Wharf's own TLS on the TCP socket)."""
        # partial(), not a lambda: called at each connection, it runs no Python frame.
        if tls is None:
            return cast(Callable[[], asyncio.Protocol],
                        partial(ClientConnection, self.plane, listener))
        return cast(Callable[[], asyncio.Protocol],
                    partial(TlsConnection, self.plane, listener, tls.listener))

    async def _sweep_forever(self) -> None:
        ticks = round(SWEEP_INTERVAL / CLOCK_TICK)
        while True:
            for _ in range(ticks - 1):
                await asyncio.sleep(CLOCK_TICK)
                self.plane.tick()
            await asyncio.sleep(CLOCK_TICK)
            self.plane.sweep()

    async def _report_forever(self) -> None:
        while True:
            await asyncio.sleep(REPORT_INTERVAL)
            self._report()

    def _report(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            plane = self.plane
            traffic = self._traffic.encode(
                plane.counters, len(plane.connections),
                {name: len(svc.queue) for name, svc in plane.services.items() if svc.queue},
            ) if plane.counting else None
            self._writer.write(frame(self._reports.encode(
                os.getpid(), plane.snapshot.version, plane.backend_states(), traffic)))

    async def _drain(self) -> None:
        for server in self._servers.values():
            server.close()
        deadline = self._loop.time() + DRAIN_TIMEOUT
        while self.plane.active_exchanges() and self._loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.plane.connections):
            conn.close()


def _url(host: str, port: int, tls: bool = False) -> str:
    """`http://127.0.0.1:8080`: a terminal makes it a link to click."""
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound with SO_REUSEPORT. Bound here rather than by create_server(host, port),
    whose name lookup starts libuv's thread pool: a process with threads takes glibc's slower
    paths on every read, write and malloc."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def main() -> None:
    """Entry point: `python -m wharf.proxy.worker SNAPSHOT_SOCKET`."""
    import uvloop

    from wharf.observability.log_setup import setup_logging

    setup_logging()
    # What startup made lives as long as the worker, and a request leaves no reference cycles
    # (its objects die by reference counting): collect rarely, and never visit the former.
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def run() -> int:
        return await Worker(Path(sys.argv[1])).run()

    sys.exit(uvloop.run(run()))


if __name__ == "__main__":
    main()
