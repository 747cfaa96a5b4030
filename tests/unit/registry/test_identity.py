"""Services and health targets are named by what they balance over, never by position."""

import asyncio
from pathlib import Path
from typing import Any

from wharf.config import config_from_data
from wharf.registry.build import config_table, health_targets, service_names
from wharf.registry.health import HealthChecker

HEALTH = {"path": "/healthz", "interval": "1s"}
READY = {"web": [("127.0.0.1", 20001)], "api": [("127.0.0.1", 20002)]}


def config(tmp_path: Path, *routes: dict[str, Any]):
    return config_from_data({
        "apps": {"web": {"command": "x"}, "api": {"command": "y"}},
        "proxy": {"listen": ["127.0.0.1:8080"]}, "routes": list(routes)},
        tmp_path / "wharf.toml")


def test_inserting_a_route_above_renames_no_service(tmp_path):
    web = {"path": "/", "app": "web", "health": HEALTH}
    ext = {"path": "/ext", "servers": ["127.0.0.1:9001"]}
    before = service_names(config(tmp_path, ext, web))
    after = service_names(config(tmp_path, {"path": "/old", "redirect": "/new"},
                                 {"path": "/api", "app": "api"}, ext, web))
    assert before == ["route:/ext", "app:web"]
    assert after == [None, "app:api", "route:/ext", "app:web"]


def test_routes_to_one_app_share_a_service_unless_they_balance_differently(tmp_path):
    names = service_names(config(
        tmp_path, {"path": "/a", "app": "web"}, {"path": "/b", "app": "web"},
        {"path": "/c", "app": "web", "balance": "least_conn"},
        {"path": "/d", "app": "web", "retries": 0}, {"path": "/e", "app": "web"}))
    assert names == ["app:web", "app:web", "app:web#2", "app:web#3", "app:web"]


def test_health_targets_leave_the_weight_out(tmp_path):
    def targets(weight: int):
        cfg = config(tmp_path, {
            "path": "/", "health": HEALTH,
            "servers": [{"address": "127.0.0.1:9001", "weight": weight}]})
        return health_targets(config_table(cfg), cfg.apps, READY)

    assert list(targets(1)) == list(targets(3)) == [("route:/", "127.0.0.1", 9001)]


def test_a_weight_change_keeps_a_backends_health_up(tmp_path):
    def targets(weight: int):
        cfg = config(tmp_path, {"path": "/old", "redirect": "/new"}, {
            "path": "/", "health": HEALTH,
            "servers": [{"address": "127.0.0.1:9001", "weight": weight}]})
        return health_targets(config_table(cfg), cfg.apps, READY)

    async def run() -> None:
        checker = HealthChecker(lambda: None)
        try:
            checker.sync(targets(1))  # the checks' tasks never get to run: no socket is used
            for state in checker.states().values():
                state.record(True)
                state.record(True)  # passed `rise` checks: up
            assert not checker.down()
            checker.sync(targets(3))
            assert not checker.down()
        finally:
            checker.close()

    asyncio.run(run())
