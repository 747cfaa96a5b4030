"""wharf.clients.etcd against a real etcd: keys, leases, the create-if-absent lock, watches,
and an endpoint list whose first member is down."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.etcd_server import EtcdServer
from wharf.clients.etcd import Compacted, Etcd, EtcdError, Event


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


def test_keys_are_put_read_by_prefix_and_deleted(etcd: EtcdServer, etcd_prefix: str) -> None:
    async def main() -> None:
        client = Etcd([etcd.url])
        await client.put(f"{etcd_prefix}/a", "1")
        await client.put(f"{etcd_prefix}/b", b"\xff\x00")
        await client.put(f"{etcd_prefix}x", "outside the prefix")
        revision, kvs = await client.get_prefix(f"{etcd_prefix}/")
        assert [(kv.key, kv.value) for kv in kvs] == [(f"{etcd_prefix}/a", b"1"),
                                                      (f"{etcd_prefix}/b", b"\xff\x00")]
        assert revision >= max(kv.mod_revision for kv in kvs)
        assert (await client.get(f"{etcd_prefix}/a")).value == b"1"  # type: ignore[union-attr]
        assert await client.delete(f"{etcd_prefix}/", prefix=True) == 2
        assert await client.get(f"{etcd_prefix}/a") is None
        await client.delete(f"{etcd_prefix}x")

    run(main())


def test_a_key_on_a_lease_goes_with_it_and_create_is_a_lock(etcd: EtcdServer,
                                                           etcd_prefix: str) -> None:
    async def main() -> None:
        client = Etcd([etcd.url])
        lease = await client.grant(30)
        assert await client.create(f"{etcd_prefix}/lock", "host-a", lease)
        assert not await client.create(f"{etcd_prefix}/lock", "host-b")
        assert await client.keepalive(lease) == 30
        await client.revoke(lease)
        assert await client.keepalive(lease) == 0
        assert await client.get(f"{etcd_prefix}/lock") is None
        assert await client.create(f"{etcd_prefix}/lock", "host-b")
        kv = await client.get(f"{etcd_prefix}/lock")
        assert kv is not None
        assert not await client.replace(f"{etcd_prefix}/lock", "c", kv.mod_revision - 1)
        assert await client.replace(f"{etcd_prefix}/lock", "c", kv.mod_revision)

    run(main())


def test_a_watch_sees_puts_and_deletes_from_its_revision_on(etcd: EtcdServer,
                                                           etcd_prefix: str) -> None:
    async def main() -> list[Event]:
        client = Etcd([etcd.url])
        await client.put(f"{etcd_prefix}/before", "old")
        revision, _ = await client.get_prefix(f"{etcd_prefix}/")
        seen: list[Event] = []

        async def watch() -> None:
            async for events in client.watch(f"{etcd_prefix}/", revision + 1):
                seen.extend(events)
                if len(seen) >= 2:
                    return

        task = asyncio.create_task(watch())
        await client.put(f"{etcd_prefix}/new", "v")
        await client.delete(f"{etcd_prefix}/before")
        await asyncio.wait_for(task, 10)
        return seen

    seen = run(main())
    assert [(e.kind, e.kv.key.rsplit("/", 1)[1]) for e in seen] == [  # type: ignore[attr-defined]
        ("put", "new"), ("delete", "before")]


def test_a_watch_from_a_compacted_revision_says_so(etcd: EtcdServer, etcd_prefix: str) -> None:
    async def main() -> None:
        client = Etcd([etcd.url])
        await client.put(f"{etcd_prefix}/k", "1")
        revision = await client.put(f"{etcd_prefix}/k", "2")
        await client.call("/v3/kv/compaction", {"revision": str(revision)})
        with pytest.raises(Compacted):
            async for _ in client.watch(f"{etcd_prefix}/", revision - 1):
                pass

    run(main())


def test_a_down_endpoint_is_skipped_and_none_up_is_an_error(etcd: EtcdServer,
                                                           etcd_prefix: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused

        async def main() -> None:
            client = Etcd([dead, etcd.url])
            await client.put(f"{etcd_prefix}/k", "v")
            assert client.endpoints[client._first].port != int(dead.rsplit(":", 1)[1])
            with pytest.raises(EtcdError, match="cannot connect"):
                await Etcd([dead]).get("k")

        run(main())
