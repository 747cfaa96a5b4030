"""A route with 10,000 servers: snapshots and worker reports of that size, with a real daemon."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import parse_responses, probe
from wharf.proxy.balancers import backend_id
from wharf.registry.snapshot import Backend
from wharf.testing.upstream import ScriptedUpstream

SERVERS = 10_000


def dead_servers(count: int, port: int) -> list[str]:
    """`count` distinct loopback addresses on which nothing listens (a connect is refused)."""
    return [f"127.0.{1 + i // 250}.{1 + i % 250}:{port}" for i in range(count)]


@pytest.fixture
def upstreams() -> Iterator[tuple[ScriptedUpstream, ScriptedUpstream]]:
    a, b = ScriptedUpstream("A"), ScriptedUpstream("B")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def get(port: int, path: str, backend: Backend) -> bytes:
    """GET `path`, pinned to `backend` by its sticky cookie."""
    return probe(port, f"GET {path} HTTP/1.1\r\nHost: t\r\nCookie: wharf_backend="
                 f"{backend_id(backend)}\r\nConnection: close\r\n\r\n".encode())


def test_a_route_with_10000_servers_is_served_and_reported(
        upstreams: tuple[ScriptedUpstream, ScriptedUpstream], wharf: Wharf) -> None:
    # (upstreams first: they are closed after the daemon, which lets the slow request finish;
    # it is in flight for 10 s, time enough for a few `status` calls of 10,000 rows each)
    a, b = upstreams
    port = free_port()
    servers = [f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}",
               *dead_servers(SERVERS - 2, free_port())]
    listed = ", ".join(f'"{s}"' for s in servers)
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]

        [[routes]]
        path = "/"
        balance = "cookie"
        servers = [{listed}]
        """)
    wharf.up()
    to_a, to_b = Backend("127.0.0.1", a.port), Backend("127.0.0.1", b.port)
    wait_until(lambda: b" 200 " in get(port, "/first", to_a), timeout=30,
               message="the proxy to serve a request through a 10,000-server route")
    worker = wharf.row("wharf-proxy")
    # A request in flight is reported back: the worker's reports reach the daemon.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(f"GET /slow/10 HTTP/1.1\r\nHost: t\r\nCookie: wharf_backend="
                     f"{backend_id(to_b)}\r\n\r\n".encode())
        row = wait_until(lambda: next((r for r in wharf.backends()
                                       if r["backend"] == f"127.0.0.1:{b.port}"
                                       and r["inflight"] == 1), None),
                         timeout=30, message="the slow request to be reported in flight")
        assert row["service"] and row["health"] == "unchecked"
    rows = wharf.backends()
    assert len(rows) == SERVERS
    assert b" 200 " in get(port, "/second", to_a)
    assert [r.target for r in a.requests] == ["/first", "/second"]
    after = wharf.row("wharf-proxy")
    assert (after["pid"], after["state"], after["restarts"]) == \
        (worker["pid"], "RUNNING", worker["restarts"])
    assert parse_responses(get(port, "/third", to_b))[0].status == 200
