"""The snapshot socket with a real Publisher and a real client: frames of any size go through."""

from __future__ import annotations

import asyncio
from pathlib import Path

from wharf.registry.delta import Follower
from wharf.registry.frames import frame, read_frame
from wharf.registry.publisher import Publisher
from wharf.registry.reports import ReportWriter
from wharf.registry.snapshot import Backend, Service, Snapshot

BACKENDS = 10_000


def big_snapshot(version: int) -> Snapshot:
    """10,000 backends, every one on another port at each version (so each goes whole)."""
    backends = tuple(Backend(f"127.0.{i // 250}.{i % 250}", 8000 + (i + version) % 1000)
                     for i in range(BACKENDS))
    return Snapshot(version=version, services=(Service("s", backends),))


def test_a_10000_backend_snapshot_and_report_cross_the_socket(tmp_path: Path) -> None:
    async def run() -> None:
        reported = asyncio.Event()
        publisher = Publisher(tmp_path / "proxy.sock", reported.set)
        await publisher.start()
        try:
            publisher.publish(big_snapshot(1))
            reader, writer = await asyncio.open_unix_connection(str(publisher.path))
            payload = await asyncio.wait_for(read_frame(reader), 10)
            assert payload is not None and Snapshot.from_json(payload) == big_snapshot(1)
            # Every backend with an error: far over the 64 KiB a line could hold.
            states = {("s", b.host, b.port): (0, False, "connect: Connection refused")
                      for b in big_snapshot(1).services[0].backends}
            report = ReportWriter().encode(1, 1, states)
            assert len(report) > 64 * 1024
            writer.write(frame(report))
            await asyncio.wait_for(reported.wait(), 10)
            assert publisher.serving(1) and len(publisher.backend_totals()) == BACKENDS
            writer.close()
        finally:
            await publisher.close()

    asyncio.run(run())


def test_a_worker_that_reads_late_gets_the_newest_snapshot_next(tmp_path: Path) -> None:
    async def run() -> None:
        publisher = Publisher(tmp_path / "proxy.sock")
        await publisher.start()
        try:
            publisher.publish(big_snapshot(1))
            reader, writer = await asyncio.open_unix_connection(str(publisher.path))
            for version in range(2, 40):  # 20 MB of snapshots the worker does not read yet
                publisher.publish(big_snapshot(version))
                await asyncio.sleep(0)
            follower = Follower()
            versions = []
            while not versions or versions[-1] != 39:
                payload = await asyncio.wait_for(read_frame(reader), 10)
                assert payload is not None
                versions.append(follower.take(payload).version)
            assert len(versions) <= 3  # the first, maybe one in the socket, then the newest
            assert follower.snapshot == big_snapshot(39)
            writer.close()
        finally:
            await publisher.close()

    asyncio.run(run())


def test_a_connected_worker_gets_deltas_and_a_new_one_the_whole_snapshot(tmp_path: Path) -> None:
    async def run() -> None:
        publisher = Publisher(tmp_path / "proxy.sock")
        await publisher.start()
        services = tuple(Service(f"s{i}", (Backend("127.0.0.1", 9000 + i),))
                         for i in range(1000))
        first = Snapshot(version=1, services=services)
        second = Snapshot(version=2, services=(Service("s0", (Backend("127.0.0.1", 1),)),
                                               *services[1:]))
        try:
            publisher.publish(first)
            reader, writer = await asyncio.open_unix_connection(str(publisher.path))
            follower = Follower()
            whole = await asyncio.wait_for(read_frame(reader), 10)
            assert whole is not None and follower.take(whole) == first
            publisher.publish(second)
            delta = await asyncio.wait_for(read_frame(reader), 10)
            assert delta is not None and follower.take(delta) == second
            assert follower.delta is not None and len(delta) * 50 < len(whole)
            late_reader, late_writer = await asyncio.open_unix_connection(str(publisher.path))
            late = await asyncio.wait_for(read_frame(late_reader), 10)
            assert late is not None and Snapshot.from_json(late) == second
            writer.close()
            late_writer.close()
        finally:
            await publisher.close()

    asyncio.run(run())
