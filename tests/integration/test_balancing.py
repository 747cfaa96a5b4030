"""Balancing, health and resilience through the proxy, with real scripted backends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import Response, get, probe, request
from wharf.testing.upstream import ScriptedUpstream


class Rig:
    def __init__(self, wharf: Wharf, port: int, upstreams: list[ScriptedUpstream]) -> None:
        self.wharf, self.port, self.upstreams = wharf, port, upstreams

    def get(self, path: str = "/", headers: str = "") -> Response:
        return get(self.port, path, headers=headers)

    def who(self, path: str = "/", headers: str = "") -> str | None:
        return self.get(path, headers).header("X-Backend")


@contextlib.contextmanager
def rig(tmp_path: Path, route: str, upstreams: list[ScriptedUpstream],
        proxy: str = "", dead: int = 0) -> Iterator[Rig]:
    """A proxy with one route over `upstreams` (plus `dead` addresses nobody listens on);
    `route` is extra TOML for that route."""
    port = free_port()
    servers = [f'"127.0.0.1:{u.port}"' for u in upstreams] + [
        f'"127.0.0.1:{free_port()}"' for _ in range(dead)]
    wharf = Wharf(tmp_path)
    wharf.write_config(f'[proxy]\nlisten = ["127.0.0.1:{port}"]\n{proxy}\n[[routes]]\n'
                       f'servers = [{", ".join(servers)}]\n{route}\n')
    try:
        wharf.up()
        wait_until(lambda: probe(port, b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
                                          b"Connection: close\r\n\r\n").startswith(
            b"HTTP/1.1 200"), message="the proxy to answer")
        yield Rig(wharf, port, upstreams)
    finally:
        wharf.close()
        for u in upstreams:
            u.close()


def test_round_robin_takes_turns(tmp_path: Path):
    ups = [ScriptedUpstream(n) for n in "ABC"]
    with rig(tmp_path, "", ups) as r:
        counts = Counter(r.who() for _ in range(90))
    assert counts == {"A": 30, "B": 30, "C": 30}


def test_weighted_shares_by_weight(tmp_path: Path):
    ups = [ScriptedUpstream(n) for n in "ABC"]
    port = free_port()
    wharf = Wharf(tmp_path)
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]
        [[routes]]
        balance = "weighted"
        servers = [{{ address = "127.0.0.1:{ups[0].port}", weight = 3 }},
                   {{ address = "127.0.0.1:{ups[1].port}", weight = 2 }},
                   "127.0.0.1:{ups[2].port}"]
    """)
    try:
        wharf.up()
        wait_until(lambda: probe(port))
        picks = [get(port, "/").header("X-Backend") for _ in range(600)]
    finally:
        wharf.close()
        for u in ups:
            u.close()
    counts = Counter(picks[1:])  # the first was the readiness probe's neighbour
    assert abs(counts["A"] - 300) <= 30 and abs(counts["B"] - 200) <= 30
    assert abs(counts["C"] - 100) <= 30
    assert "AAA" not in "".join(p or "" for p in picks)  # interleaved, not bursts


def test_least_conn_sends_less_to_a_slow_backend(tmp_path: Path):
    ups = [ScriptedUpstream("slow", delay=0.3), ScriptedUpstream("fast")]
    with rig(tmp_path, 'balance = "least_conn"', ups) as r, ThreadPoolExecutor(8) as pool:
        counts = Counter(pool.map(lambda _: r.who("/lc"), range(40)))
    assert counts["fast"] > 2 * counts["slow"], counts


def test_ip_hash_keeps_a_client_on_one_backend(tmp_path: Path):
    ups = [ScriptedUpstream(n) for n in "ABCD"]
    with rig(tmp_path, 'balance = "ip_hash"', ups,
             proxy='trusted_proxies = ["127.0.0.0/8"]') as r:
        for i in range(10):
            client = f"X-Forwarded-For: 198.51.100.{i}\r\n"
            assert len({r.who(headers=client) for _ in range(5)}) == 1
        spread = {r.who(headers=f"X-Forwarded-For: 203.0.113.{i}\r\n") for i in range(60)}
        # What the client wrote left of the address its trusted proxy saw proves nothing.
        spoofed = {r.who(headers=f"X-Forwarded-For: 10.9.{i}.1, 198.51.100.7, 127.0.0.5\r\n")
                   for i in range(20)}
    assert len(spread) >= 3 and len(spoofed) == 1


def test_hash_on_a_header(tmp_path: Path):
    ups = [ScriptedUpstream(n) for n in "ABC"]
    with rig(tmp_path, 'balance = "hash"\nhash_key = "header:X-User"', ups) as r:
        for user in ("alice", "bob", "carol", "dave"):
            assert len({r.who(headers=f"X-User: {user}\r\n") for _ in range(5)}) == 1
        spread = {r.who(headers=f"X-User: user{i}\r\n") for i in range(60)}
    assert len(spread) == 3


def test_cookie_sticks_to_the_backend_it_names(tmp_path: Path):
    ups = [ScriptedUpstream(n) for n in "ABC"]
    with rig(tmp_path, 'balance = "cookie"\ncookie = "sticky"', ups) as r:
        first = r.get("/")
        cookie = first.header("Set-Cookie")
        assert cookie and cookie.startswith("sticky=") and "HttpOnly" in cookie
        value = cookie.split(";")[0]
        pinned = [r.get("/", headers=f"Cookie: other=1; {value}\r\n") for _ in range(10)]
        assert {p.header("X-Backend") for p in pinned} == {first.header("X-Backend")}
        assert all(p.header("Set-Cookie") is None for p in pinned)


def test_ewma_steers_away_from_a_slow_backend(tmp_path: Path):
    ups = [ScriptedUpstream("slow", delay=0.05), ScriptedUpstream("fast")]
    with rig(tmp_path, 'balance = "ewma"', ups) as r:
        for _ in range(20):
            r.who("/warm")
        counts = Counter(r.who("/e") for _ in range(100))
    assert counts["fast"] >= 80, counts


def test_p2c_uses_every_backend(tmp_path: Path):
    ups = [ScriptedUpstream(n) for n in "ABC"]
    with rig(tmp_path, 'balance = "p2c"', ups) as r:
        counts = Counter(r.who() for _ in range(90))
    assert set(counts) == {"A", "B", "C"}


def test_active_health_checks_keep_a_backend_out_until_it_passes(tmp_path: Path):
    sick = ScriptedUpstream("sick", healthy=False)
    ups = [ScriptedUpstream("well"), sick]
    health = ('health = { path = "/healthz", interval = "200ms", timeout = "1s", rise = 2, '
              'fall = 2 }')
    with rig(tmp_path, health, ups, dead=1) as r:
        assert {r.who("/h") for _ in range(20)} == {"well"}
        rows = {row["backend"]: row for row in r.wharf.backends()}
        assert rows[f"127.0.0.1:{sick.port}"]["health"] == "down"
        assert "status 503" in rows[f"127.0.0.1:{sick.port}"]["last_error"]
        dead = next(b for b in rows if b not in (f"127.0.0.1:{u.port}" for u in ups))
        assert rows[dead]["health"] == "down" and "connect" in rows[dead]["last_error"]
        sick.healthy = True
        wait_until(lambda: {r.who("/h") for _ in range(10)} == {"well", "sick"},
                   message="the recovered backend to rejoin")
        table = r.wharf.run("status").stdout
        assert "BACKEND" in table and "up" in table and "down" in table


def test_a_failing_backend_is_ejected_and_comes_back(tmp_path: Path):
    bad = ScriptedUpstream("bad", broken=True)
    with rig(tmp_path, 'eject_after = 2\nejection = "1s"', [ScriptedUpstream("good"), bad]) as r:
        statuses = [r.get("/p").status for _ in range(6)]
        assert statuses.count(500) == 2  # two failures, then it is out
        assert {r.who("/p") for _ in range(10)} == {"good"}
        wait_until(lambda: "status 500" in next(
            b for b in r.wharf.backends() if b["backend"].endswith(f":{bad.port}"))[
            "last_error"], message="status to show the backend's last error")
        bad.broken = False
        wait_until(lambda: "bad" in {r.who("/p") for _ in range(4)}, timeout=15,
                   message="the backend back after its cool-down")


def test_a_refused_connect_is_retried_on_another_backend(tmp_path: Path):
    with rig(tmp_path, "", [ScriptedUpstream("alive")], dead=2) as r:
        assert [r.get("/r").status for _ in range(30)] == [200] * 30
        ejected = [b for b in r.wharf.backends() if b["ejected"]]
        wait_until(lambda: len([b for b in r.wharf.backends() if b["ejected"]]) == 2,
                   message="both dead backends ejected") if len(ejected) < 2 else None


def test_a_reset_is_retried_for_get_but_not_for_post(tmp_path: Path):
    ups = [ScriptedUpstream("A"), ScriptedUpstream("B")]
    with rig(tmp_path, "eject_after = 0", ups) as r:
        assert r.get("/hangup-get").status == 502
        assert all(any(h.startswith("/hangup-get") for h in u.heads) for u in ups)
        post = request(r.port, b"POST /hangup-post HTTP/1.1\r\nHost: t\r\n"
                               b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
        assert post.status == 502
        assert sum(h.startswith("/hangup-post") for u in ups for h in u.heads) == 1


def test_max_conns_queues_requests_and_times_them_out(tmp_path: Path):
    ups = [ScriptedUpstream("one", delay=0.4)]
    with rig(tmp_path, 'max_conns = 1\nqueue_timeout = "3s"', ups) as r, \
            ThreadPoolExecutor(3) as pool:
        assert [s.status for s in pool.map(lambda _: r.get("/q"), range(3))] == [200] * 3
    ups = [ScriptedUpstream("one", delay=0.6)]
    (tmp_path / "b").mkdir()
    with rig(tmp_path / "b", 'max_conns = 1\nqueue_timeout = "200ms"', ups) as r, \
            ThreadPoolExecutor(3) as pool:
        statuses = sorted(s.status for s in pool.map(lambda _: r.get("/q"), range(3)))
    assert statuses[0] == 200 and 503 in statuses
    assert max(len([h for h in ups[0].heads if h == "/q"]), 0) <= 2


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path):
    route = 'rate_limit = { rate = "1/s", burst = 2 }'
    with rig(tmp_path, route, [ScriptedUpstream("A")]) as r:
        # From an address of its own: the readiness probe spent a token of 127.0.0.1's bucket.
        statuses = [get(r.port, "/rl", source="127.0.0.2") for _ in range(3)]
    assert [s.status for s in statuses] == [200, 200, 429]
    assert statuses[2].header("Retry-After") == "1"


@pytest.mark.parametrize("strategy", ["round_robin", "weighted", "least_conn", "ip_hash",
                                      "hash", "cookie", "p2c", "ewma"])
def test_every_strategy_serves_an_app(tmp_path: Path, strategy: str):
    (tmp_path / "www").mkdir()
    port = free_port()
    wharf = Wharf(tmp_path)
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]
        [apps.web]
        command = "{{py}} {{apps}}/httpapp.py"
        instances = 2
        weight = 2
        startsecs = 0
        [[routes]]
        app = "web"
        balance = "{strategy}"
    """)
    try:
        wharf.up()
        wait_until(lambda: b"instance=" in probe(
            port, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
        bodies = {get(port, "/").body for _ in range(20)}
        assert all(b.startswith(b"instance=") for b in bodies)
        assert all(b["weight"] == 2 for b in wharf.backends())
    finally:
        wharf.close()


def test_hashing_agrees_across_workers(tmp_path: Path):
    ups = [ScriptedUpstream(n) for n in "ABCD"]
    proxy = 'workers = 2\ntrusted_proxies = ["127.0.0.0/8"]'
    with rig(tmp_path, 'balance = "ip_hash"', ups, proxy=proxy) as r:
        wait_until(lambda: [x["state"] for x in r.wharf.instances("wharf-proxy")]
                   == ["RUNNING"] * 2, message="two workers")
        for i in range(8):  # new connections land on either worker
            client = f"X-Forwarded-For: 192.0.2.{i}\r\n"
            assert len({r.who(headers=client) for _ in range(8)}) == 1


def test_a_tcp_health_check_takes_out_a_closed_port(tmp_path: Path):
    with rig(tmp_path, 'health = { interval = "200ms", rise = 1, fall = 1 }',
             [ScriptedUpstream("up")], dead=1) as r:
        assert {r.who("/t") for _ in range(10)} == {"up"}
        assert sorted(b["health"] for b in r.wharf.backends()) == ["down", "up"]


def _load(port: int, stop: list[bool], results: list[int], post: bool) -> None:
    """One keep-alive client sending POSTs (or GETs) until told to stop; records each status."""
    import socket as sockets

    from tests.integration.proxyutil import parse_responses

    with sockets.create_connection(("127.0.0.1", port), timeout=10) as s:
        while not stop:
            # POST: never retried, so a request cut by a stopping instance would show
            s.sendall(b"POST /load HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
                      if post else b"GET /load HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while not (responses := parse_responses(data)):
                chunk = s.recv(65536)
                if not chunk:
                    results.append(-1)  # the connection was closed under us
                    return
                data += chunk
            results.append(responses[0].status)


@contextlib.contextmanager
def under_load(port: int, clients: int = 8, post: bool = True) -> Iterator[list[int]]:
    """Keep `clients` keep-alive clients sending POSTs (GETs if not `post`) while the body
    runs; yields the list their statuses go into (complete once the block ends)."""
    stop: list[bool] = []
    results: list[int] = []
    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(_load, port, stop, results, post) for _ in range(clients)]
        try:
            yield results
        finally:
            stop.append(True)
            for client in running:
                client.result()


def _web(tmp_path: Path, port: int, extra: str = "") -> Wharf:
    wharf = Wharf(tmp_path)
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]
        [apps.web]
        command = "{{py}} {{apps}}/httpapp.py"
        instances = 4
        startsecs = "0.3s"
        drain_timeout = "5s"
        ready_timeout = "5s"
        {extra}
        [[routes]]
        app = "web"
    """)
    return wharf


def test_scaling_under_load_fails_no_request(tmp_path: Path):
    port = free_port()
    wharf = _web(tmp_path, port)
    try:
        wharf.up()
        wait_until(lambda: [i["state"] for i in wharf.instances("web")] == ["RUNNING"] * 4,
                   message="4 instances")
        wait_until(lambda: b"instance=" in probe(port), message="the proxy")
        with under_load(port) as results:
            for count in (2, 6, 3):
                scaled = wharf.run("scale", "web", str(count))
                assert scaled.returncode == 0, scaled.stderr + scaled.stdout
                rows = wharf.instances("web")  # scale returns once the new ones take traffic
                assert len(rows) == count and all(r["ready"] for r in rows), rows
            wait_until(lambda: len(results) > 100, message="traffic after the last scale")
    finally:
        wharf.close()
    assert len(results) > 100
    assert set(results) == {200}, Counter(results)


def test_an_instance_joins_the_pool_only_once_it_answers(tmp_path: Path):
    port = free_port()
    wharf = Wharf(tmp_path)
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]
        [apps.web]
        command = "{{py}} {{apps}}/httpapp.py"
        env = {{ LISTEN_AFTER = "4" }}
        startsecs = 0
        ready_path = "/"
        [[routes]]
        app = "web"
    """)
    try:
        wharf.up()
        row = wharf.wait_state("web", "RUNNING")
        assert row["ready"] is False
        early = get(port, "/")
        assert early.status == 503  # no instance ready yet: not a 502 from a closed port
        wait_until(lambda: wharf.row("web")["ready"], message="the instance to be ready")
        wait_until(lambda: get(port, "/").status == 200, message="traffic to reach it")
    finally:
        wharf.close()


def _free_ports(count: int) -> int:
    """The first of `count` consecutive free ports, below the ephemeral range (where the test's
    own client connections could take one before the app binds it) and above port_range."""
    import random
    import socket as sockets

    for _ in range(50):
        base = random.randrange(30000, 32768 - count)
        held: list[sockets.socket] = []
        try:
            for p in range(base, base + count):
                s = sockets.socket()
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise AssertionError(f"no {count} consecutive free ports")


@pytest.mark.parametrize("mode", ["surge 1", "surge 2", "fixed port"])
def test_a_rolling_reload_under_load_fails_no_request(tmp_path: Path, mode: str):
    port = free_port()
    extra = f"port = {_free_ports(4)}" if mode == "fixed port" else \
        f"max_surge = {mode.split()[1]}"
    wharf = _web(tmp_path, port, extra)
    try:
        wharf.up()
        wharf.wait_ready("web", 4)
        before = {i["pid"] for i in wharf.instances("web")}
        with under_load(port) as results:
            rolled = wharf.run("reload", "web")
            assert rolled.returncode == 0, rolled.stderr
            assert rolled.stdout.strip() == "rolled: web"
            wait_until(lambda: len(results) > 50, message="traffic after the roll")
        after = {i["pid"] for i in wharf.instances("web")}
    finally:
        wharf.close()
    assert len(after) == 4 and not before & after
    assert len(results) > 50 and set(results) == {200}, Counter(results)


def test_a_new_version_that_fails_leaves_the_old_one_serving(tmp_path: Path):
    port = free_port()
    flag = tmp_path / "broken"
    wharf = _web(tmp_path, port, f'env = {{ FAIL_IF_EXISTS = "{flag}" }}\nstartretries = 0')
    try:
        wharf.up()
        wharf.wait_ready("web", 4)
        before = sorted(i["pid"] for i in wharf.instances("web"))
        flag.write_text("the new deploy is broken")
        rolled = wharf.run("reload", "web")
        assert rolled.returncode == 1
        assert "did not become ready" in rolled.stderr and "old instances keep serving" in \
            rolled.stderr
        assert sorted(i["pid"] for i in wharf.instances("web")) == before
        assert all(get(port, "/").status == 200 for _ in range(10))
    finally:
        wharf.close()


@pytest.mark.parametrize("flag, says, states", [
    ("FAIL_IF_EXISTS", "web.1: FATAL (exited too quickly", ["RUNNING", "FATAL", "FATAL"]),
    ("HANG_IF_EXISTS", "web.1: not ready after 1s", ["RUNNING", "RUNNING", "RUNNING"]),
])
def test_scaling_up_to_instances_that_never_get_ready_says_so(tmp_path: Path, flag: str,
                                                              says: str, states: list[str]):
    """New instances that give up, or that run but never answer within --timeout."""
    port = free_port()
    broken = tmp_path / "broken"
    wharf = _web(tmp_path, port, f'env = {{ {flag} = "{broken}" }}\nstartretries = 0')
    wharf.config.write_text(wharf.config.read_text().replace("instances = 4", "instances = 1"))
    try:
        wharf.up()
        wharf.wait_ready("web", 1)
        broken.write_text("new instances cannot serve")
        scaled = wharf.run("scale", "web", "3", "--timeout", "1")
        assert scaled.returncode == 1, scaled.stdout
        assert says in scaled.stderr and "web.2: " in scaled.stderr, scaled.stderr
        assert [r["state"] for r in wharf.instances("web")] == states
        assert all(get(port, "/").status == 200 for _ in range(10))
    finally:
        wharf.close()


def test_a_roll_waits_for_the_health_checks_of_the_new_instance(tmp_path: Path):
    """With one instance, draining the old one before the new one is up in the route's
    health checks would leave no backend at all."""
    port = free_port()
    wharf = Wharf(tmp_path)
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]
        [apps.web]
        command = "{{py}} {{apps}}/httpapp.py"
        startsecs = "0.3s"
        drain_timeout = "5s"
        [[routes]]
        app = "web"
        health = {{ path = "/", interval = "200ms", rise = 3 }}
    """)
    try:
        wharf.up()
        wait_until(lambda: b"instance=" in probe(port), message="a healthy instance")
        before = wharf.row("web")["pid"]
        with under_load(port, clients=4) as results:
            rolled = wharf.run("reload", "web")
            assert rolled.returncode == 0, rolled.stderr
            wait_until(lambda: len(results) > 50, message="traffic after the roll")
        assert wharf.row("web")["pid"] != before
    finally:
        wharf.close()
    assert set(results) == {200}, Counter(results)


def test_a_failed_roll_is_tried_again_by_the_next_reload(tmp_path: Path):
    port = free_port()
    flag = tmp_path / "broken"
    wharf = _web(tmp_path, port, f'env = {{ FAIL_IF_EXISTS = "{flag}", VERSION = "1" }}\n'
                                 "startretries = 0")
    try:
        wharf.up()
        wharf.wait_ready("web", 4)
        flag.write_text("the new deploy is broken")
        wharf.config.write_text(wharf.config.read_text().replace('"1"', '"2"'))
        for _ in range(2):  # the second reload must not think web is up to date
            reloaded = wharf.run("reload")
            assert reloaded.returncode == 1 and "web" in reloaded.stdout, reloaded.stdout
        flag.unlink()
        reloaded = wharf.run("reload")
        assert reloaded.returncode == 0 and "rolled: web" in reloaded.stdout, reloaded.stdout
    finally:
        wharf.close()


def test_a_reload_that_routes_to_a_running_app_puts_it_in_the_pool(tmp_path: Path):
    port = free_port()
    wharf = _web(tmp_path, port)
    wharf.config.write_text(wharf.config.read_text().replace('app = "web"',
                                                             'redirect = "/elsewhere"'))
    try:
        wharf.up()
        wait_until(lambda: [i["state"] for i in wharf.instances("web")] == ["RUNNING"] * 4,
                   message="4 instances")
        wharf.config.write_text(wharf.config.read_text().replace('redirect = "/elsewhere"',
                                                                 'app = "web"'))
        reloaded = wharf.run("reload")
        assert reloaded.returncode == 0, reloaded.stderr
        wait_until(lambda: b"instance=" in probe(port), message="the app behind the new route")
    finally:
        wharf.close()


def test_concurrent_rolls_take_turns(tmp_path: Path):
    port = free_port()
    wharf = _web(tmp_path, port)
    try:
        wharf.up()
        wharf.wait_ready("web", 4)
        with ThreadPoolExecutor(2) as pool:
            rolls = list(pool.map(lambda _: wharf.run("reload", "web"), range(2)))
        assert [r.returncode for r in rolls] == [0, 0], [r.stderr for r in rolls]
        rows = wharf.instances("web")
        assert len(rows) == 4 and all(i["state"] == "RUNNING" and i["ready"] for i in rows)
        assert len({i["port"] for i in rows}) == 4
    finally:
        wharf.close()


def test_a_config_reload_rolls_changed_apps_and_routes_under_load(tmp_path: Path):
    port = free_port()
    wharf = _web(tmp_path, port, 'env = { VERSION = "1" }')
    try:
        wharf.up()
        wharf.wait_ready("web", 4)
        before = {i["pid"] for i in wharf.instances("web")}
        with under_load(port) as results:
            text = wharf.config.read_text().replace('VERSION = "1"', 'VERSION = "2"')
            wharf.config.write_text(text + '\n[[routes]]\npath = "/new"\n'
                                           'redirect = "/elsewhere"\n')
            reloaded = wharf.run("reload")
            assert reloaded.returncode == 0, reloaded.stderr
            assert "rolled: web" in reloaded.stdout
            wait_until(lambda: get(port, "/new").status == 302, message="the new route")
            wait_until(lambda: len(results) > 50, message="traffic after the reload")
        after = {i["pid"] for i in wharf.instances("web")}
    finally:
        wharf.close()
    assert len(after) == 4 and not before & after
    assert len(results) > 50 and set(results) == {200}, Counter(results)


def _socket_web(tmp_path: Path, instances: int, extra: str = "") -> tuple[Wharf, int, int]:
    """A daemon whose app `web` (fdapp) runs in socket mode behind the proxy: (wharf, proxy
    port, app port)."""
    proxy_port, app_port = free_port(), free_port()
    wharf = Wharf(tmp_path)
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{proxy_port}"]
        [apps.web]
        command = "{{py}} {{apps}}/fdapp.py"
        instances = {instances}
        startsecs = "0.3s"
        socket = "tcp://127.0.0.1:{app_port}"
        {extra}
        [[routes]]
        app = "web"
    """)
    return wharf, proxy_port, app_port


def test_socket_mode_shares_one_socket_among_instances(tmp_path: Path):
    wharf, proxy_port, app_port = _socket_web(tmp_path, 3)
    try:
        wharf.up()
        wait_until(lambda: [i["state"] for i in wharf.instances("web")] == ["RUNNING"] * 3,
                   message="3 instances")
        pids = {str(i["pid"]) for i in wharf.instances("web")}
        direct = {get(app_port, "/").body.split()[0] for _ in range(60)}
        assert len(direct) >= 2  # the kernel spreads connections over the instances
        assert {d.decode().removeprefix("pid=") for d in direct} <= pids
        wait_until(lambda: probe(proxy_port).startswith(b"HTTP/1.1 200"), message="the proxy")
        assert [b["backend"] for b in wharf.backends()] == [f"127.0.0.1:{app_port}"]
    finally:
        wharf.close()


def test_a_socket_mode_roll_under_traffic_does_not_wait_out_drain_timeout(tmp_path: Path):
    """Every instance shares one address, so requests in flight to it never reach zero under
    traffic; a roll must not wait drain_timeout (60 s here, longer than `run` waits) per
    batch for them."""
    wharf, proxy_port, _ = _socket_web(tmp_path, 2, 'drain_timeout = "60s"')
    stop: list[bool] = []

    def traffic() -> None:
        while not stop:
            with contextlib.suppress(OSError, AssertionError):
                get(proxy_port, "/")

    try:
        wharf.up()
        wait_until(lambda: probe(proxy_port).startswith(b"HTTP/1.1 200"), message="the proxy")
        before = {i["pid"] for i in wharf.instances("web")}
        with ThreadPoolExecutor(4) as pool:
            for _ in range(4):
                pool.submit(traffic)
            try:
                rolled = wharf.run("reload", "web")
            finally:
                stop.append(True)
        assert rolled.returncode == 0, rolled.stderr
        assert not before & {i["pid"] for i in wharf.instances("web")}
    finally:
        wharf.close()


def _more_traffic(results: list[int]) -> None:
    count = len(results)
    wait_until(lambda: len(results) > count + 20, message="20 more responses")


def _refused(port: int) -> bool:
    try:
        get(port, "/")
    except ConnectionRefusedError:
        return True
    return False


# In socket mode the proxy cannot drain one instance (they share an address): a roll stops an
# old instance with its connections, which only an app that finishes its requests on SIGTERM
# completes (fdapp does not), and the proxy retries the GETs that were cut. Hence GET loads.

@pytest.mark.parametrize("health", ["", 'health = { interval = "100ms", rise = 10 }'])
def test_a_reload_moves_a_socket_mode_app_to_its_new_socket_under_load(tmp_path: Path,
                                                                         health: str):
    """With active health checks the new address must be up in them before the old one is
    drained (a new address starts down)."""
    wharf, proxy_port, old_port = _socket_web(tmp_path, 2, 'drain_timeout = "5s"')
    wharf.config.write_text(wharf.config.read_text() + health + "\n")
    new_port = free_port()
    try:
        wharf.up()
        wait_until(lambda: probe(proxy_port).startswith(b"HTTP/1.1 200"), message="the proxy")
        with under_load(proxy_port, post=False) as results:
            wait_until(lambda: len(results) > 20, message="traffic before the reload")
            wharf.config.write_text(wharf.config.read_text().replace(
                f"127.0.0.1:{old_port}", f"127.0.0.1:{new_port}"))
            reloaded = wharf.run("reload")
            assert reloaded.returncode == 0, reloaded.stderr
            assert "rolled: web" in reloaded.stdout
            _more_traffic(results)
        assert get(new_port, "/").status == 200
        assert _refused(old_port)  # the old socket is closed once its instances are gone
        assert [b["backend"] for b in wharf.backends()] == [f"127.0.0.1:{new_port}"]
    finally:
        wharf.close()
    assert set(results) == {200}, Counter(results)


def test_a_reload_moves_an_app_from_its_own_ports_to_a_shared_socket_and_back(tmp_path: Path):
    proxy_port, app_port = free_port(), free_port()
    wharf = _web(tmp_path, proxy_port)
    ports_mode = wharf.config.read_text().replace("instances = 4", "instances = 2")
    socket_mode = ports_mode.replace("httpapp.py", "fdapp.py").replace(
        "instances = 2", f'instances = 2\nsocket = "tcp://127.0.0.1:{app_port}"')
    wharf.config.write_text(ports_mode)
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        with under_load(proxy_port, post=False) as results:
            for text in (socket_mode, ports_mode):
                wharf.config.write_text(text)
                reloaded = wharf.run("reload")
                assert reloaded.returncode == 0, reloaded.stderr
                _more_traffic(results)
                backends = [b["backend"] for b in wharf.backends()]
                if text is socket_mode:
                    assert backends == [f"127.0.0.1:{app_port}"]
                    assert b"pid=" in get(app_port, "/").body
                else:
                    assert len(backends) == 2 and f"127.0.0.1:{app_port}" not in backends
                    assert _refused(app_port)
    finally:
        wharf.close()
    assert set(results) == {200}, Counter(results)


def test_a_reload_moves_an_app_from_a_shared_socket_to_fixed_ports_under_load(tmp_path: Path):
    wharf, proxy_port, app_port = _socket_web(tmp_path, 2)
    fixed = _free_ports(2)
    try:
        wharf.up()
        wait_until(lambda: probe(proxy_port).startswith(b"HTTP/1.1 200"), message="the proxy")
        with under_load(proxy_port, post=False) as results:
            wharf.config.write_text(wharf.config.read_text().replace("fdapp.py", "httpapp.py")
                                    .replace(f'socket = "tcp://127.0.0.1:{app_port}"',
                                             f"port = {fixed}"))
            reloaded = wharf.run("reload")
            assert reloaded.returncode == 0, reloaded.stderr + reloaded.stdout
            _more_traffic(results)
        assert sorted(b["backend"] for b in wharf.backends()) == [
            f"127.0.0.1:{fixed}", f"127.0.0.1:{fixed + 1}"]
        assert [i["port"] for i in wharf.instances("web")] == [fixed, fixed + 1]
        assert _refused(app_port)
    finally:
        wharf.close()
    assert set(results) == {200}, Counter(results)


def _with_slow_posts(port: int, action: Callable[[], subprocess.CompletedProcess[str]]
                     ) -> tuple[subprocess.CompletedProcess[str], list[int]]:
    """Run `action` while four POSTs that take 1.5 s each are in flight through the proxy (a
    POST is never retried: one cut by a stopping instance shows); its result, their statuses."""
    with ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(request, port, b"POST /slow?sleep=1.5 HTTP/1.1\r\nHost: t\r\n"
                            b"Content-Length: 2\r\nConnection: close\r\n\r\nhi")
                for _ in range(4)]
        time.sleep(0.3)  # all four have reached the instances
        done = action()
        return done, [f.result().status for f in slow]


def test_a_reload_to_other_fixed_ports_drains_the_old_ones_first(tmp_path: Path):
    """Slow POSTs in flight on the old ports when the reload starts must be answered: the
    drain waits on the address an instance serves now, not on the one it will serve."""
    proxy_port, old, new = free_port(), _free_ports(2), _free_ports(2)
    wharf = _web(tmp_path, proxy_port, f"port = {old}")
    wharf.config.write_text(wharf.config.read_text().replace("instances = 4", "instances = 2"))
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        wharf.config.write_text(wharf.config.read_text().replace(f"port = {old}",
                                                                 f"port = {new}"))
        reloaded, statuses = _with_slow_posts(proxy_port, lambda: wharf.run("reload"))
        assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
        assert statuses == [200] * 4
        assert [i["port"] for i in wharf.instances("web")] == [new, new + 1]
    finally:
        wharf.close()


def test_reverting_a_half_failed_roll_rolls_back_what_it_replaced(tmp_path: Path):
    import json
    import re

    wharf = _web(tmp_path, free_port(), "max_surge = 1\nstartretries = 0")
    text = wharf.config.read_text().replace("instances = 4", "instances = 2")
    wharf.config.write_text(text)
    line = re.search(r'^\s*command = "(.*)"$', text, re.MULTILINE)
    assert line is not None
    only_first = json.dumps(["sh", "-c", f'test "$WHARF_INSTANCE" = 0 && exec {line[1]}'])
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        wharf.config.write_text(text.replace(line[0], f"\ncommand = {only_first}"))
        failed = wharf.run("reload")
        assert failed.returncode == 1 and "1 of 2 had been replaced" in failed.stdout, \
            failed.stdout
        replaced = wharf.instances("web")[0]["pid"]
        wharf.config.write_text(text)
        reverted = wharf.run("reload")
        assert reverted.returncode == 0 and "rolled: web" in reverted.stdout, reverted.stdout
        assert wharf.instances("web")[0]["pid"] != replaced
    finally:
        wharf.close()


def test_down_during_a_roll_stops_the_new_instances_too(tmp_path: Path):
    import psutil

    hang = tmp_path / "hang"

    def ours() -> list[int]:
        found = []
        for p in psutil.process_iter(["environ"]):
            with contextlib.suppress(psutil.Error):
                if (p.info["environ"] or {}).get("HANG_IF_EXISTS") == str(hang):
                    found.append(p.pid)
        return found

    wharf = _web(tmp_path, free_port(), f'env = {{ HANG_IF_EXISTS = "{hang}" }}')
    wharf.config.write_text(wharf.config.read_text().replace("instances = 4", "instances = 1"))
    try:
        wharf.up()
        wharf.wait_ready("web", 1)
        hang.write_text("the new version never listens")
        with ThreadPoolExecutor(1) as pool:
            rolling = pool.submit(wharf.run, "reload", "web")
            wait_until(lambda: len(ours()) == 2, message="the old instance and its replacement")
            assert wharf.run("down").returncode == 0
            assert rolling.result().returncode != 0
        wait_until(lambda: not ours(), message="no process of the app left")
    finally:
        wharf.close()
        for pid in ours():  # what a failure left behind
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def test_removing_an_app_lets_its_requests_in_flight_finish(tmp_path: Path):
    proxy_port = free_port()
    wharf = _web(tmp_path, proxy_port)
    text = wharf.config.read_text().replace("instances = 4", "instances = 2")
    wharf.config.write_text(text)
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        wharf.config.write_text(text[:text.index("[apps.web]")] + "[[routes]]\nredirect = \"/x\"\n")
        reloaded, statuses = _with_slow_posts(proxy_port, lambda: wharf.run("reload"))
        assert reloaded.returncode == 0 and "removed: web" in reloaded.stdout, reloaded.stdout
        assert statuses == [200] * 4
    finally:
        wharf.close()


def test_scaling_down_waits_for_slow_requests_in_flight(tmp_path: Path):
    proxy_port = free_port()
    wharf = _web(tmp_path, proxy_port)
    wharf.config.write_text(wharf.config.read_text().replace("instances = 4", "instances = 2"))
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        scaled, statuses = _with_slow_posts(proxy_port, lambda: wharf.run("scale", "web", "1"))
        assert scaled.returncode == 0, scaled.stderr
        assert statuses == [200] * 4
    finally:
        wharf.close()


def test_a_failed_move_from_a_socket_to_fixed_ports_puts_the_instance_back(tmp_path: Path):
    wharf, proxy_port, app_port = _socket_web(tmp_path, 1)
    flag = tmp_path / "broken"
    flag.write_text("the new version cannot start")
    try:
        wharf.up()
        wait_until(lambda: probe(proxy_port).startswith(b"HTTP/1.1 200"), message="the proxy")
        wharf.config.write_text(wharf.config.read_text().replace("fdapp.py", "httpapp.py").replace(
            f'socket = "tcp://127.0.0.1:{app_port}"',
            f'port = {_free_ports(1)}\nstartretries = 0\nenv = {{ FAIL_IF_EXISTS = "{flag}" }}'))
        reloaded = wharf.run("reload")
        assert reloaded.returncode == 1 and "failed: web" in reloaded.stdout, reloaded.stdout
        wharf.wait_ready("web", 1)
        assert b"pid=" in get(app_port, "/").body  # back on its socket, as it was
        assert get(proxy_port, "/").status == 200
        scaled = wharf.run("scale", "web", "2")
        assert scaled.returncode == 0, scaled.stderr
        assert {get(app_port, "/").status for _ in range(6)} == {200}
    finally:
        wharf.close()


def _socket_apps(sockets: dict[str, int]) -> str:
    """Config text: an fdapp on its own socket for each (name, port)."""
    return "".join(f"""
        [apps.{name}]
        command = "{{py}} {{apps}}/fdapp.py"
        socket = "tcp://127.0.0.1:{port}"
        startsecs = 0
    """ for name, port in sockets.items())


def test_two_apps_cannot_swap_sockets_in_one_reload(tmp_path: Path):
    first, second = free_port(), free_port()
    wharf = Wharf(tmp_path)
    wharf.write_config(_socket_apps({"a": first, "b": second}))
    try:
        wharf.up()
        wharf.wait_state("b", "RUNNING")
        wharf.write_config(_socket_apps({"a": second, "b": first}))
        reloaded = wharf.run("reload")
        assert reloaded.returncode == 2, reloaded.stdout
        assert f"apps.a.socket: 127.0.0.1:{second} is still bound for app b" in reloaded.stderr
        assert get(first, "/").status == 200 and get(second, "/").status == 200
    finally:
        wharf.close()


def test_a_renamed_app_keeps_its_socket(tmp_path: Path):
    port = free_port()
    wharf = Wharf(tmp_path)
    wharf.write_config(_socket_apps({"old": port}))
    try:
        wharf.up()
        wharf.wait_state("old", "RUNNING")
        wharf.write_config(_socket_apps({"new": port}))
        reloaded = wharf.run("reload")  # removals go first: the address is free for `new`
        assert reloaded.returncode == 0, reloaded.stderr
        wharf.wait_state("new", "RUNNING")
        assert get(port, "/").status == 200
    finally:
        wharf.close()


def test_socket_and_port_together_are_refused(tmp_path: Path):
    wharf = Wharf(tmp_path)
    wharf.write_config('[apps.web]\ncommand = "x"\nport = 9000\nsocket = "tcp://127.0.0.1:9001"\n')
    result = wharf.run("check")
    assert result.returncode == 2 and "apps.web.socket: cannot be used with port" in result.stderr
