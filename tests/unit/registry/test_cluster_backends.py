"""Services with scope = "cluster": every host's instances, and prefer = "local"."""

from __future__ import annotations

from pathlib import Path

from wharf.config import config_from_data
from wharf.registry.build import build_snapshot, config_source, health_targets
from wharf.registry.snapshot import Backend
from wharf.registry.table import merge

REMOTE = {"web": (Backend("10.0.0.2", 9001, 3), Backend("10.0.0.3", 9001))}


def config(tmp_path: Path, **service: object):
    return config_from_data({
        "apps": {"web": {"command": "x", "weight": 2}},
        "cluster": {"etcd": ["http://127.0.0.1:2379"], "name": "a"},
        "services": {"web": {"app": "web", "health": {"path": "/"}, **service}},
        "routes": [{"service": "web"}]}, tmp_path / "wharf.toml")


def backends(tmp_path: Path, ready: dict, down: frozenset = frozenset(), **service: object):
    snap = build_snapshot(config(tmp_path, **service), 1, ready, down, remote=REMOTE)
    return list(snap.services[0].backends)


def test_a_cluster_service_balances_over_this_hosts_instances_and_the_others(tmp_path):
    assert backends(tmp_path, {"web": [("127.0.0.1", 8001)]}, scope="cluster") == [
        Backend("127.0.0.1", 8001, 2), *REMOTE["web"]]


def test_a_local_service_ignores_the_other_hosts(tmp_path):
    assert backends(tmp_path, {"web": [("127.0.0.1", 8001)]}) == [Backend("127.0.0.1", 8001, 2)]


def test_prefer_local_sends_to_the_other_hosts_only_when_no_local_instance_is_up(tmp_path):
    ready = {"web": [("127.0.0.1", 8001)]}
    assert backends(tmp_path, ready, scope="cluster", prefer="local") == [
        Backend("127.0.0.1", 8001, 2)]
    assert backends(tmp_path, {}, scope="cluster", prefer="local") == list(REMOTE["web"])
    down = frozenset({("web", "127.0.0.1", 8001)})  # taken out by its health checks
    assert backends(tmp_path, ready, down, scope="cluster", prefer="local") == \
        list(REMOTE["web"])


def test_the_other_hosts_instances_are_health_checked_too(tmp_path):
    cfg = config(tmp_path, scope="cluster", prefer="local")
    table = merge([config_source(cfg)])
    targets = health_targets(table, cfg.apps, {"web": [("127.0.0.1", 8001)]}, REMOTE)
    assert set(targets) == {("web", "127.0.0.1", 8001), ("web", "10.0.0.2", 9001),
                            ("web", "10.0.0.3", 9001)}
