"""Snapshots and worker reports at scale, with a real daemon: a route with 10,000 servers,
and 1,000 services of 10 servers each, where a one-backend change goes as a small delta."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

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


SERVICES, PER_SERVICE, FILES = 1000, 10, 10
APPLIED = re.compile(r"serving snapshot (\d+) \((whole|delta), (\d+) bytes(?:, (\d+) services "
                     r"changed)?\)")


def scale_file(index: int, live: str) -> str:
    """conf.d/NN.toml: 100 services of 10 servers, each on its own route; s0's first server
    is `live` (and s0 sticky, so a request can pick it), every other one a dead address."""
    per, parts = SERVICES // FILES, []
    for i in range(index * per, (index + 1) * per):
        servers = [live if i == j == 0 else f"127.{1 + i // 250}.{i % 250}.{j + 1}:9"
                   for j in range(PER_SERVICE)]
        listed = ", ".join(f'"{s}"' for s in servers)
        sticky = 'balance = "cookie"\n' if i == 0 else ""
        parts.append(f'[services.s{i}]\nservers = [{listed}]\n{sticky}'
                     f'[[routes]]\nhost = "h{i}.test"\nservice = "s{i}"\n')
    return "".join(parts)


def frames_applied(root: Path) -> list[tuple[int, str, int, int | None]]:
    """What the worker logged of each frame: (version, whole or delta, bytes, services)."""
    text = "".join(p.read_text() for p in root.glob(".wharf/**/wharf-proxy*.log"))
    return [(int(v), kind, int(size), int(n) if n else None)
            for v, kind, size, n in APPLIED.findall(text)]


def test_a_one_backend_change_among_1000_services_reaches_the_worker_as_a_small_delta(
        upstreams: tuple[ScriptedUpstream, ScriptedUpstream], wharf: Wharf,
        monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = upstreams
    port = free_port()
    monkeypatch.setenv("WHARF_LOG_LEVEL", "debug")  # the worker logs each frame it applies
    confd = wharf.root / "conf.d"
    confd.mkdir()
    for index in range(FILES):
        (confd / f"{index:02}.toml").write_text(scale_file(index, a.address))
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]
        [providers.file]
        directory = "conf.d"
        """)
    wharf.up()

    def answer(backend: Backend) -> bytes:
        return probe(port, f"GET / HTTP/1.1\r\nHost: h0.test\r\nCookie: wharf_backend="
                     f"{backend_id(backend)}\r\nConnection: close\r\n\r\n".encode())

    wait_until(lambda: b"X-Backend: A" in answer(Backend("127.0.0.1", a.port)), timeout=60,
               message="the 1,000 services to be served")
    worker = wharf.row("wharf-proxy")
    # (the daemon writes the worker's output to its log file a moment later: waited for)
    whole = wait_until(lambda: max((size for _, kind, size, _ in frames_applied(wharf.root)
                                    if kind == "whole"), default=0) > 100_000 and
                       max(size for _, kind, size, _ in frames_applied(wharf.root)),
                       message="the worker to log the whole snapshot")
    (confd / "00.toml").write_text(scale_file(0, b.address))
    wait_until(lambda: b"X-Backend: B" in answer(Backend("127.0.0.1", b.port)), timeout=30,
               message="the worker to route to the new backend")
    _, kind, size, _ = wait_until(
        lambda: next((f for f in reversed(frames_applied(wharf.root)) if f[3] == 1), None),
        message="the worker to log the delta")
    assert kind == "delta" and size * 100 < whole
    assert b"X-Backend: B" in answer(Backend("127.0.0.1", b.port))
    after = wharf.row("wharf-proxy")
    assert (after["pid"], after["restarts"]) == (worker["pid"], worker["restarts"])
