"""A worker's data plane across snapshots: what must outlive a change of the backend set."""

import asyncio

from wharf.proxy.exchange import Exchange
from wharf.proxy.plane import DataPlane
from wharf.proxy.server import ClientConnection
from wharf.registry.snapshot import Backend, Route, Service, Snapshot


def exchange_on(plane: DataPlane) -> Exchange:
    """An exchange on a client connection never connected."""
    client = ClientConnection(plane)
    return Exchange(client, client.peer, plane)


def snapshot(version: int, *ports: int) -> Snapshot:
    backends = tuple(Backend("127.0.0.1", p) for p in ports)
    return Snapshot(version=version, routes=(Route(service="s"),),
                    services=(Service("s", backends, max_conns=1),))


def test_queued_requests_and_the_retry_budget_outlive_a_snapshot():
    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        plane.apply(snapshot(1, 9001))
        old = plane.services["s"]
        waiting = exchange_on(plane)
        waiting.svc = old
        old.queue.append(waiting)
        old.budget = 3.0
        plane.apply(snapshot(2, 9001, 9002))  # an instance joined
        new = plane.services["s"]
        assert new is not old and list(new.queue) == [waiting] and waiting.svc is new
        assert new.budget == 3.0
    finally:
        loop.close()


def test_a_backend_that_leaves_is_reported_until_its_requests_finish():
    """The daemon drains an instance by waiting for the workers to report no request in
    flight to it; they must go on reporting it after it has left their snapshot."""
    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        plane.apply(snapshot(1, 9001, 9002))
        load = plane.loads[("127.0.0.1", 9001)]
        load.inflight = 2
        plane.apply(snapshot(2, 9002))  # drained
        assert plane.backend_states()[("", "127.0.0.1", 9001)] == (2, False, "")
        drained: list[bool] = []
        plane.on_drained = lambda: drained.append(True)  # the worker reports at once
        plane.tick()
        assert not drained
        load.inflight = 0
        plane.tick()
        assert drained == [True]
        assert not plane.backend_states()  # nothing to say of any backend
        load.inflight = 1
        plane.leaving[("127.0.0.1", 9001)] = load
        plane.apply(snapshot(3, 9001, 9002))  # back before its last request finished
        assert plane.loads[("127.0.0.1", 9001)] is load and not plane.leaving
    finally:
        loop.close()


def test_a_route_whose_rate_limit_is_unchanged_keeps_its_buckets():
    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        limited = Route(service="s", rate=1.0, burst=1)
        plane.apply(Snapshot(version=1, routes=(limited,), services=(Service("s"),)))
        bucket = plane.limiters[id(limited)]
        same = Route(service="s", rate=1.0, burst=1)  # equal, another object
        plane.apply(Snapshot(version=2, routes=(same,), services=(Service("s"),)))
        assert plane.limiters[id(same)] is bucket
        faster = Route(service="s", rate=5.0, burst=1)
        plane.apply(Snapshot(version=3, routes=(faster,), services=(Service("s"),)))
        assert plane.limiters[id(faster)] is not bucket
    finally:
        loop.close()


def test_a_retry_goes_to_a_backend_of_the_current_snapshot():
    """An attempt that fails after a snapshot took its backends out must not retry on one of
    them (the daemon may be stopping it), but on what the worker serves now."""
    async def scenario() -> int:
        plane = DataPlane(asyncio.get_running_loop())
        plane.apply(snapshot(1, 9101, 9102))
        ex = exchange_on(plane)
        ex.svc, ex.method = plane.services["s"], b"GET"
        assert ex._choose()
        plane.apply(snapshot(2, 9103))  # both drained; 9103 is the new instance
        assert ex._retry("connect: refused")
        assert ex.backend is not None and ex.connecting is not None
        ex.connecting.cancel()
        return ex.backend.port

    assert asyncio.run(scenario()) == 9103


def test_a_response_cut_midway_gives_its_backend_slot_back():
    """Else the leaving backend would be reported busy forever, and every later drain of its
    address would wait out drain_timeout."""
    async def scenario() -> tuple[int, list[bool]]:
        sent = asyncio.Event()

        async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
            await writer.drain()
            sent.set()
            await asyncio.sleep(0.1)
            writer.transport.abort()  # the instance dies mid-response

        loop = asyncio.get_running_loop()
        upstream = await asyncio.start_server(backend, "127.0.0.1", 0)
        port = upstream.sockets[0].getsockname()[1]
        plane = DataPlane(loop)
        drained: list[bool] = []
        plane.on_drained = lambda: drained.append(True)
        plane.apply(snapshot(1, port))
        proxy = await loop.create_server(lambda: ClientConnection(plane), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", proxy.sockets[0].getsockname()[1])
        writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        await sent.wait()
        load = plane.loads[("127.0.0.1", port)]
        plane.apply(snapshot(2))  # drained while answering
        await reader.read()  # the client's connection is cut
        plane.tick()
        writer.close()
        proxy.close()
        upstream.close()
        return load.inflight, drained

    inflight, drained = asyncio.run(scenario())
    assert inflight == 0 and drained == [True]


def test_a_route_inserted_above_keeps_the_services_queue_and_rate_limit(tmp_path):
    """A worker carries state by service name: the name must not follow the route's index."""
    from wharf.config import config_from_data
    from wharf.registry.build import build_snapshot

    def built(version: int, *above: dict) -> Snapshot:
        return build_snapshot(config_from_data({
            "apps": {"web": {"command": "x"}}, "proxy": {"listen": ["127.0.0.1:8080"]},
            "routes": [*above, {"path": "/", "app": "web", "max_conns": 1,
                                "rate_limit": {"rate": "10/s", "burst": 5}}]},
            tmp_path / "wharf.toml"), version, {"web": [("127.0.0.1", 9001)]})

    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        plane.apply(built(1))
        (old,) = plane.services.values()
        waiting = exchange_on(plane)
        waiting.svc = old
        old.queue.append(waiting)
        (limiter,) = plane.limiters.values()
        plane.apply(built(2, {"path": "/old", "redirect": "/new"}))
        (new,) = plane.services.values()
        assert list(new.queue) == [waiting] and waiting.svc is new
        assert limiter in plane.limiters.values()
    finally:
        loop.close()


def test_a_named_service_keeps_its_queue_when_its_routes_move_and_a_weight_changes(tmp_path):
    """Two routes share `[services.api]`: reordering them, adding one and reweighting a
    server keep the worker's state of the service (queue, retry budget)."""
    from wharf.config import config_from_data
    from wharf.registry.build import build_snapshot

    def built(version: int, weight: int, *paths: str) -> Snapshot:
        return build_snapshot(config_from_data({
            "proxy": {"listen": ["127.0.0.1:8080"]},
            "services": {"api": {"servers": [{"address": "127.0.0.1:9001", "weight": weight},
                                             "127.0.0.1:9002"], "max_conns": 1}},
            "routes": [{"path": p, "service": "api"} for p in paths]},
            tmp_path / "wharf.toml"), version, {})

    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        plane.apply(built(1, 1, "/a", "/b"))
        old = plane.services["api"]
        waiting = exchange_on(plane)
        waiting.svc = old
        old.queue.append(waiting)
        old.budget = 4.0
        plane.apply(built(2, 3, "/c", "/b", "/a"))
        assert list(plane.services) == ["api"]
        new = plane.services["api"]
        assert list(new.queue) == [waiting] and waiting.svc is new and new.budget == 4.0
        assert [b.weight for b in new.service.backends] == [3, 1]
    finally:
        loop.close()


def test_a_delta_rebuilds_only_the_services_it_changes():
    """At 1,000 services a one-backend change must not rebuild the others: an unchanged
    service keeps its state whole (balancer, ejections), the routes their router."""
    from dataclasses import replace

    from wharf.registry.delta import diff, patch

    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        services = tuple(Service(f"s{i}", (Backend("127.0.0.1", 9000 + i),
                                           Backend("127.0.0.1", 9100 + i))) for i in range(3))
        old = Snapshot(version=1, routes=tuple(Route(host=f"h{i}", service=f"s{i}")
                                               for i in range(3)), services=services)
        plane.apply(old)
        states, router = dict(plane.services), plane.router
        ejected = plane.loads[("127.0.0.1", 9000)]
        ejected.ejected_until = loop.time() + 60
        changed = replace(services[0], backends=(*services[0].backends,
                                                 Backend("127.0.0.1", 9200)))
        new = replace(old, version=2, services=(changed, *services[1:]))
        plane.apply(patch(old, diff(old, new)))
        assert plane.router is router
        assert plane.services["s1"] is states["s1"] and plane.services["s2"] is states["s2"]
        assert plane.services["s0"] is not states["s0"]
        assert plane.services["s0"].all_loads[0] is ejected  # its ejection is kept
        assert [b.port for b in plane.services["s0"].backends] == [9100, 9200]
    finally:
        loop.close()


def test_a_backend_two_services_share_keeps_its_pool_until_both_drop_it():
    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        shared, own = Backend("127.0.0.1", 9001), Backend("127.0.0.1", 9002)

        def snap(version: int, a: tuple[Backend, ...], b: tuple[Backend, ...]) -> Snapshot:
            return Snapshot(version=version, services=(Service("a", a), Service("b", b)))

        plane.apply(snap(1, (shared, own), (shared,)))
        pool = plane.pools[("127.0.0.1", 9001)]
        plane.counters.backend("a", "127.0.0.1", 9001)
        plane.apply(snap(2, (own,), (shared,)))  # `a` drops it, `b` still has it
        assert plane.pools[("127.0.0.1", 9001)] is pool and not pool.closed
        assert ("a", "127.0.0.1", 9001) not in plane.counters.backends
        plane.apply(snap(3, (own,), (own,)))
        assert ("127.0.0.1", 9001) not in plane.pools and pool.closed
        assert ("127.0.0.1", 9001) not in plane.loads
        plane.apply(Snapshot(version=4))  # every service gone
        assert not plane.pools and not plane.loads and not plane.services
    finally:
        loop.close()


def test_a_leaving_backends_counters_go_once_its_last_request_ends():
    loop = asyncio.new_event_loop()
    try:
        plane = DataPlane(loop)
        plane.apply(snapshot(1, 9001, 9002))
        plane.loads[("127.0.0.1", 9001)].inflight = 1
        plane.apply(snapshot(2, 9002))
        plane.counters.backend("s", "127.0.0.1", 9001)  # its request ended: counted again
        plane.counters.backend("s", "127.0.0.1", 9002)
        plane.leaving[("127.0.0.1", 9001)].inflight = 0
        plane.tick()
        assert list(plane.counters.backends) == [("s", "127.0.0.1", 9002)]
    finally:
        loop.close()
