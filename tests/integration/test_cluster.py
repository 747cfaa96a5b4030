"""Several hosts ([cluster]): each host a network namespace with its own Wharf and app, one
etcd in the root namespace, GETs through host B's proxy while host A rolls, dies or is cut
off (see cluster_hosts.py)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster_hosts import HostWharf, Load, Network, network
from tests.integration.conftest import wait_until
from tests.integration.etcd_server import ETCD, EtcdServer, run_etcd

pytestmark = pytest.mark.skipif(not shutil.which("ip"), reason="needs iproute2 (ip netns)")


@pytest.fixture(scope="module")
def net() -> Iterator[Network]:
    """Two hosts, a and b, on one bridge."""
    with network(("a", "b")) as made:
        yield made


@pytest.fixture(scope="module")
def etcd_on_bridge(net: Network, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[EtcdServer]:
    """etcd in the root namespace, on the bridge's address (reachable from every host)."""
    if not shutil.which(ETCD):
        pytest.fail("etcd is not installed: `apt-get install etcd-server` (.ci/run does it)")
    with run_etcd(tmp_path_factory.mktemp("cluster-etcd"), host=net.gateway) as server:
        yield server


@pytest.fixture
def hosts(net: Network, etcd_on_bridge: EtcdServer, tmp_path: Path,
          request: pytest.FixtureRequest) -> Iterator[dict[str, HostWharf]]:
    """A Wharf per host, configured alike, started, each seeing the other's instances (the
    service's retries: 3, or as `@pytest.mark.retries(N)` says)."""
    marker = request.node.get_closest_marker("retries")
    with started(net, etcd_on_bridge.url, tmp_path, marker.args[0] if marker else 3) as made:
        yield made


@contextlib.contextmanager
def started(net: Network, etcd_url: str, tmp_path: Path, retries: int = 3
            ) -> Iterator[dict[str, HostWharf]]:
    """Start a Wharf on every host of `net`; stop them all after."""
    prefix = f"/test-{uuid.uuid4().hex[:8]}"
    made = {name: HostWharf(tmp_path / name, host, etcd_url, prefix)
            for name, host in net.hosts.items()}
    try:
        for wharf in made.values():
            wharf.configure(retries)
            wharf.up()
        for wharf in made.values():
            wharf.wait_ready("web", 2)
        for wharf in made.values():
            wait_until(lambda w=wharf: w.pool() == {"a", "b"}, 30, "both hosts in the pool")
        yield made
    finally:
        for wharf in made.values():
            wharf.close()


def through_b(hosts: dict[str, HostWharf]) -> Load:
    b = hosts["b"]
    return Load(b.host.address, b.port)


def test_a_cluster_service_balances_over_both_hosts(hosts: dict[str, HostWharf]):
    with through_b(hosts) as load:
        load.answered_by("a")
        load.answered_by("b")
    assert load.failures == []
    rows = [r for r in hosts["b"].status_json() if r["kind"] == "cluster"]
    assert [(r["host"], r["self"], r["instances"]) for r in rows] == [
        ("b", True, 2), ("a", False, 2)]
    assert "a" in hosts["b"].run("status").stdout


@pytest.mark.retries(0)  # no retry hides a request sent to an instance that left
def test_a_rolling_reload_on_a_fails_no_request_through_b(hosts: dict[str, HostWharf]):
    a = hosts["a"]
    with through_b(hosts) as load:
        load.answered_by("a")
        before = {r["pid"] for r in a.instances("web")}
        for _ in range(2):
            result = a.run("restart", "web")
            assert result.returncode == 0, result.stderr
        after = {r["pid"] for r in a.instances("web")}
        load.answered_by("a")
    assert before.isdisjoint(after)
    assert load.failures == [], load.failures[:5]


def test_kill_9_of_a_takes_its_instances_out_of_bs_pool_and_a_rejoins(
        hosts: dict[str, HostWharf]):
    a, b = hosts["a"], hosts["b"]
    with through_b(hosts) as load:
        load.answered_by("a")
        a.kill9()
        killed = time.monotonic()
        wait_until(lambda: b.pool() == {"b"}, 30, "a out of b's pool")
        print(f"kill -9 to removal from b's pool: {time.monotonic() - killed:.2f}s")
        a.close()  # its orphaned apps too
        load.answered_by("b")
        a.up()
        wait_until(lambda: b.pool() == {"a", "b"}, 30, "a back in b's pool")
        load.answered_by("a")
    assert load.failures == [], load.failures[:5]


def test_a_cut_off_host_leaves_bs_pool_within_the_ttl_and_rejoins(
        hosts: dict[str, HostWharf]):
    a, b = hosts["a"], hosts["b"]
    with through_b(hosts) as load:
        load.answered_by("a")
        a.host.cut()
        try:
            cut = time.monotonic()
            wait_until(lambda: b.pool() == {"b"}, 30, "a out of b's pool")
            print(f"cut to removal from b's pool: {time.monotonic() - cut:.2f}s")
            wait_until(lambda: any(r["self"] and r["since"] for r in a.status_json()
                                   if r["kind"] == "cluster"), 30, "a to say etcd is gone")
            assert "etcd unreachable since" in a.run("status").stdout
            load.answered_by("b")
        finally:
            a.host.mend()
        wait_until(lambda: b.pool() == {"a", "b"}, 30, "a back in b's pool")
        load.answered_by("a")
    assert load.failures == [], load.failures[:5]


def test_with_etcd_frozen_every_host_serves_on_with_what_it_knows_and_says_so(
        net: Network, tmp_path: Path):
    with run_etcd(tmp_path / "etcd", host=net.gateway) as own_etcd, \
            started(net, own_etcd.url, tmp_path) as hosts, through_b(hosts) as load:
        load.answered_by("a")
        own_etcd.proc.send_signal(signal.SIGSTOP)  # it accepts nothing and answers nothing
        try:
            for wharf in hosts.values():
                wait_until(lambda w=wharf: any(r["self"] and r["since"] for r in w.status_json()
                                               if r["kind"] == "cluster"), 30,
                           "the host to say etcd is unreachable")
            assert hosts["b"].pool() == {"a", "b"}  # nothing left because etcd went silent
            load.answered_by("a")
            load.answered_by("b")
        finally:
            own_etcd.proc.send_signal(signal.SIGCONT)
        for wharf in hosts.values():
            wait_until(lambda w=wharf: not any(r["since"] for r in w.status_json()
                                               if r["kind"] == "cluster"), 30, "etcd back")
            wait_until(lambda w=wharf: w.pool() == {"a", "b"}, 30, "both hosts in the pool")
        load.answered_by("a")
    assert load.failures == [], load.failures[:5]
