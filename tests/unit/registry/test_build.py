"""The build reuses the Service and Route objects whose inputs did not change."""

from pathlib import Path

from wharf.config import config_from_data
from wharf.config.model import Config
from wharf.registry.build import BuildCache, build_snapshot
from wharf.registry.delta import diff


def config(tmp_path: Path, first: str = "10.0.0.1:80", weight: int = 1) -> Config:
    services = {f"s{i}": {"servers": [first if i == 0 else f"10.0.1.{i}:80", "10.0.2.1:80"]}
                for i in range(20)}
    routes = [{"host": f"h{i}.test", "service": f"s{i}"} for i in range(20)]
    return config_from_data({
        "apps": {"web": {"command": "x", "weight": weight}},
        "proxy": {"listen": ["127.0.0.1:8080"]},
        "services": services,
        "routes": [*routes, {"path": "/app", "app": "web"}]}, tmp_path / "wharf.toml")


def test_a_build_with_the_same_inputs_reuses_every_piece(tmp_path):
    cache = BuildCache()
    ready = {"web": [("127.0.0.1", 20001)]}
    one = build_snapshot(config(tmp_path), 1, ready, cache=cache)
    two = build_snapshot(config(tmp_path), 2, ready, cache=cache)  # equal, new config objects
    assert all(a is b for a, b in zip(one.services, two.services, strict=True))
    assert all(a is b for a, b in zip(one.routes, two.routes, strict=True))
    assert one.settings is two.settings
    delta = diff(one, two)
    assert delta.services == () and delta.routes is None and delta.settings is None


def test_one_changed_server_rebuilds_its_service_alone(tmp_path):
    cache = BuildCache()
    one = build_snapshot(config(tmp_path), 1, {}, cache=cache)
    two = build_snapshot(config(tmp_path, first="10.9.9.9:80"), 2, {}, cache=cache)
    changed = [b for a, b in zip(one.services, two.services, strict=True) if a is not b]
    assert [s.name for s in changed] == ["s0"]
    assert changed[0].backends[0].host == "10.9.9.9"
    assert diff(one, two).services == (changed[0],)


def test_ready_instances_app_weight_and_health_are_inputs(tmp_path):
    cache = BuildCache()
    one = build_snapshot(config(tmp_path), 1, {"web": [("127.0.0.1", 20001)]}, cache=cache)
    app = next(s for s in one.services if s.name == "app:web")
    two = build_snapshot(config(tmp_path), 2, {"web": [("127.0.0.1", 20002)]}, cache=cache)
    moved = next(s for s in two.services if s.name == "app:web")
    assert moved is not app and moved.backends[0].port == 20002
    three = build_snapshot(config(tmp_path, weight=3), 3, {"web": [("127.0.0.1", 20002)]},
                           cache=cache)
    assert next(s for s in three.services if s.name == "app:web").backends[0].weight == 3
    four = build_snapshot(config(tmp_path, weight=3), 4, {"web": [("127.0.0.1", 20002)]},
                          frozenset({("s1", "10.0.2.1", 80)}), cache=cache)
    delta = diff(three, four)
    assert [s.name for s in delta.services] == ["s1"]
    assert [b.host for b in delta.services[0].backends] == ["10.0.1.1"]
    five = build_snapshot(config(tmp_path, weight=3), 5, {"web": [("127.0.0.1", 20002)]},
                          cache=cache)
    assert [s.name for s in diff(four, five).services] == ["s1"]  # back up


def test_a_build_without_a_cache_is_the_same_snapshot(tmp_path):
    cache = BuildCache()
    build_snapshot(config(tmp_path), 1, {}, cache=cache)
    assert build_snapshot(config(tmp_path, first="10.9.9.9:80"), 2, {}, cache=cache) == \
        build_snapshot(config(tmp_path, first="10.9.9.9:80"), 2, {})
