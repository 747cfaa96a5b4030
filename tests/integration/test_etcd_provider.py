"""The etcd provider against a real etcd: keys written with `etcdctl put` are routed and
served, a bad value is refused while the last good one serves, a delete takes its route
away, an etcd that stops leaves the last known state in force (and `status` says since
when), and a compaction past the provider's revision has it read everything again."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.integration.conftest import Wharf, wait_until
from tests.integration.etcd_server import EtcdServer, run_etcd
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import get
from wharf.registry.providers.etcd import PROBE_EVERY
from wharf.testing.upstream import ScriptedUpstream

# Generous: a put is served within tens of ms (bench/discovery.py --etcd measures it); the
# deadline is only there to fail instead of hanging.
LIVE = 10.0

CONFIG = """
    [proxy]
    listen = ["127.0.0.1:{port}"]
    [providers.etcd]
    endpoints = ["{url}"]
    prefix = "{prefix}"
    timeout = "2s"
    [apps.web]
    command = "{{py}} {{apps}}/httpapp.py"
    startsecs = "0.2s"
    [[routes]]
    path = "/"
    app = "web"
"""


def etcdctl(url: str, *args: str) -> str:
    """Run the real `etcdctl` (API v3) against `url`; its output."""
    done = subprocess.run(["etcdctl", "--endpoints", url, *args], capture_output=True,
                          text=True, timeout=20, env={**os.environ, "ETCDCTL_API": "3"},
                          check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def put(url: str, key: str, value: dict) -> None:
    etcdctl(url, "put", key, json.dumps(value))


@contextlib.contextmanager
def running(tmp_path: Path, url: str, prefix: str) -> Iterator[tuple[Wharf, int]]:
    """A daemon with an app on "/" and `[providers.etcd]` on `url` and `prefix`."""
    port = free_port()
    tmp_path.mkdir(exist_ok=True)
    wharf = Wharf(tmp_path)
    wharf.write_config(CONFIG.format(port=port, url=url, prefix=prefix))
    try:
        wharf.up()
        wharf.wait_ready("web", 1)
        yield wharf, port
    finally:
        wharf.close()


@contextlib.contextmanager
def upstreams(*names: str) -> Iterator[list[ScriptedUpstream]]:
    ups = [ScriptedUpstream(name) for name in names]
    try:
        yield ups
    finally:
        for up in ups:
            up.close()


def backend(port: int, path: str) -> str | None:
    return get(port, path).header("X-Backend")


def provider_rows(wharf: Wharf) -> list[dict]:
    return [r for r in wharf.status_json() if r["kind"] == "provider"]


def row(wharf: Wharf, source: str) -> dict | None:
    return next((r for r in provider_rows(wharf) if r["source"] == source), None)


def test_a_route_and_a_service_put_with_etcdctl_are_served_and_a_delete_removes_them(
        tmp_path: Path, etcd: EtcdServer, etcd_prefix: str):
    with upstreams("api") as (api,), running(tmp_path, etcd.url, etcd_prefix) as (wharf, port):
        put(etcd.url, f"{etcd_prefix}/services/api", {"servers": [f"127.0.0.1:{api.port}"],
                                                      "balance": "least_conn"})
        put(etcd.url, f"{etcd_prefix}/routes/api", {"path": "/api", "service": "api"})
        put(etcd.url, f"{etcd_prefix}/instances/host-a/web/0", {"not": "a route"})
        wait_until(lambda: backend(port, "/api/x") == "api", LIVE, "the etcd route")
        rows = provider_rows(wharf)
        assert [(r["source"], r["state"], r["routes"], r["services"]) for r in rows] == [
            (f"etcd:{etcd_prefix}/routes/api", "ok", 1, 0),
            (f"etcd:{etcd_prefix}/services/api", "ok", 0, 1)]
        assert {r["balance"] for r in wharf.backends() if r["service"] == "api"} == \
            {"least_conn"}
        check = wharf.run("check", "--providers")
        assert check.returncode == 0, check.stderr
        assert "etcd: 2 source(s), 2 ok" in check.stdout
        etcdctl(etcd.url, "del", f"{etcd_prefix}/routes/api")
        wait_until(lambda: get(port, "/api/x").body.startswith(b"instance="), LIVE,
                   "the route to go")
        assert [r["source"] for r in provider_rows(wharf)] == [
            f"etcd:{etcd_prefix}/services/api"]


def test_a_bad_value_is_reported_at_its_key_path_and_the_last_good_one_stays(
        tmp_path: Path, etcd: EtcdServer, etcd_prefix: str):
    key = f"{etcd_prefix}/routes/ext"
    with upstreams("one") as (one,), running(tmp_path, etcd.url, etcd_prefix) as (wharf, port):
        put(etcd.url, key, {"path": "/ext", "servers": [f"127.0.0.1:{one.port}"]})
        wait_until(lambda: backend(port, "/ext") == "one", LIVE, "the route")
        put(etcd.url, key, {"path": "ext", "servers": ["nowhere"], "balance": "x"})
        wait_until(lambda: (r := row(wharf, f"etcd:{key}")) and r["state"] == "invalid",
                   LIVE, "the refusal in status")
        found = row(wharf, f"etcd:{key}")
        assert found is not None and found["routes"] == 1
        assert sorted(p.split(":")[0] for p in found["problems"]) == [
            "balance", "path", "servers[0]"]
        assert backend(port, "/ext") == "one"  # the last good value serves
        check = wharf.run("check", "--providers")
        assert check.returncode == 2
        assert f"etcd:{key}: path: must be a path" in check.stderr
        log = wharf.daemon_log.read_text()
        assert f"etcd:{key}: refused (its last good value stays in force):" in log
        assert "\n  path: must be a path" in log
        etcdctl(etcd.url, "put", key, "{not json")
        wait_until(lambda: "is not JSON" in str(row(wharf, f"etcd:{key}")), LIVE,
                   "the next refusal")
        put(etcd.url, key, {"path": "/ext", "app": "web"})
        wait_until(lambda: get(port, "/ext").body.startswith(b"instance="), LIVE, "the fix")
        assert row(wharf, f"etcd:{key}") == {
            "kind": "provider", "provider": "etcd", "source": f"etcd:{key}", "state": "ok",
            "routes": 1, "services": 0, "problems": []}


def test_a_stopped_etcd_leaves_the_routes_in_force_and_status_says_since_when(
        tmp_path: Path):
    data = tmp_path / "etcd"
    with upstreams("one", "two") as (one, two), contextlib.ExitStack() as first_run:
        server = first_run.enter_context(run_etcd(data))
        url = server.url
        put(url, "/wharf/routes/ext", {"path": "/ext", "servers": [f"127.0.0.1:{one.port}"]})
        with running(tmp_path / "wharf", url, "/wharf") as (wharf, port):
            wait_until(lambda: backend(port, "/ext") == "one", LIVE, "the etcd route")
            first_run.close()  # etcd stops: the last known state serves
            down = wait_until(lambda: row(wharf, url), LIVE, "etcd to be reported down")
            assert isinstance(down, dict) and down["state"] == "unreachable"
            (problem,) = down["problems"]
            assert problem.startswith("unreachable since 20")
            assert problem.endswith("the last known routes and services stay in force")
            assert "unreachable since" in wharf.run("status").stdout
            assert backend(port, "/ext") == "one"
            check = wharf.run("check", "--providers")
            assert check.returncode == 2 and f"{url}: unreachable since" in check.stderr
            with run_etcd(data, ports=server.ports):  # the same etcd, its data kept
                put(url, "/wharf/routes/ext", {"path": "/ext",
                                               "servers": [f"127.0.0.1:{two.port}"]})
                put(url, "/wharf/routes/new", {"path": "/new", "app": "web"})
                wait_until(lambda: backend(port, "/ext") == "two", LIVE, "the change")
                assert get(port, "/new").body.startswith(b"instance=")
                wait_until(lambda: row(wharf, url) is None, LIVE, "etcd to be up in status")
                assert "answers again" in wharf.daemon_log.read_text()


class Relay:
    """A TCP relay on 127.0.0.1 to one address, that the test can cut (every connection is
    closed, new ones are closed at once), freeze (new connections are closed, open ones stay
    open but carry nothing: a host cut off) and open again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.open = True
        self.frozen = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not self.frozen:
                    sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self.cut()
        self._listener.close()


def test_an_etcd_gone_silent_under_an_open_watch_is_noticed_and_watched_again(
        tmp_path: Path):
    with upstreams("one", "two") as (one, two), run_etcd(tmp_path / "etcd") as server:
        relay = Relay(("127.0.0.1", server.ports[0]))
        try:
            url, via = server.url, f"http://127.0.0.1:{relay.port}"
            put(url, "/wharf/routes/a", {"path": "/a", "servers": [f"127.0.0.1:{one.port}"]})
            with running(tmp_path / "wharf", via, "/wharf") as (wharf, port):
                wait_until(lambda: backend(port, "/a") == "one", LIVE, "the etcd route")
                relay.open, relay.frozen = False, True  # the watch's connection stays open
                put(url, "/wharf/routes/a", {"path": "/a", "servers": [f"127.0.0.1:{two.port}"]})
                wait_until(lambda: row(wharf, via), PROBE_EVERY + LIVE,
                           "the silent etcd to be reported unreachable")
                assert backend(port, "/a") == "one"
                relay.open, relay.frozen = True, False
                wait_until(lambda: backend(port, "/a") == "two", LIVE, "the change")
                wait_until(lambda: row(wharf, via) is None, LIVE, "etcd to be up in status")
        finally:
            relay.close()


def test_a_compaction_past_the_providers_revision_has_it_read_everything_again(
        tmp_path: Path):
    with upstreams("one", "two") as (one, two), run_etcd(tmp_path / "etcd") as server:
        relay = Relay(("127.0.0.1", server.ports[0]))
        try:
            url = server.url
            put(url, "/wharf/routes/a", {"path": "/a", "servers": [f"127.0.0.1:{one.port}"]})
            put(url, "/wharf/routes/gone", {"path": "/gone", "app": "web"})
            with running(tmp_path / "wharf", f"http://127.0.0.1:{relay.port}", "/wharf") \
                    as (wharf, port):
                wait_until(lambda: backend(port, "/a") == "one", LIVE, "the etcd route")
                relay.cut()  # Wharf no longer reaches etcd; meanwhile:
                wait_until(lambda: row(wharf, f"http://127.0.0.1:{relay.port}"), LIVE,
                           "etcd to be reported unreachable")
                put(url, "/wharf/routes/a", {"path": "/a", "servers": [f"127.0.0.1:{two.port}"]})
                etcdctl(url, "del", "/wharf/routes/gone")
                put(url, "/wharf/routes/b", {"path": "/b", "app": "web"})
                revision = json.loads(etcdctl(url, "get", "/wharf/routes/b", "-w", "json"))
                etcdctl(url, "compact", str(revision["header"]["revision"]))
                relay.open = True
                wait_until(lambda: backend(port, "/a") == "two", LIVE, "the change")
                assert get(port, "/b").body.startswith(b"instance=")
                assert get(port, "/gone").body.startswith(b"instance=")  # "/" now: it went
                assert [r["source"] for r in provider_rows(wharf)] == [
                    "etcd:/wharf/routes/a", "etcd:/wharf/routes/b"]
                assert "compacted past revision" in wharf.daemon_log.read_text()
        finally:
            relay.close()
