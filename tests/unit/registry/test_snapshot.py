"""Snapshots: built from the config and the ready instances, and carried as JSON."""

from dataclasses import replace
from pathlib import Path

from wharf.config import config_from_data
from wharf.registry.build import build_snapshot, instance_address
from wharf.registry.snapshot import Backend, Snapshot


def config(tmp_path: Path):
    (tmp_path / "www").mkdir()
    return config_from_data({
        "apps": {"web": {"command": "x"}},
        "proxy": {"listen": ["127.0.0.1:8080"], "timeouts": {"upstream": "3s"}},
        "routes": [
            {"path": "/api", "app": "web", "add_request_headers": {"X-A": "1"}},
            {"path": "/ext", "servers": ["10.0.0.1:80", {"address": "10.0.0.2:80", "weight": 3}]},
            {"path": "/s", "static": "www"},
            {"path": "/r", "redirect": "https://{host}{uri}"},
            {"path": "/api2", "app": "web", "headers": {"X-Version": "2"}},
        ]}, tmp_path / "wharf.toml")


def test_an_instance_is_reached_on_its_port_or_on_its_apps_shared_socket(tmp_path):
    web = config(tmp_path).apps["web"]
    assert instance_address(web, 20001) == ("127.0.0.1", 20001)
    for socket, address in [(("127.0.0.2", 8000), ("127.0.0.2", 8000)),
                            (("0.0.0.0", 8000), ("127.0.0.1", 8000)),
                            (("::", 8000), ("::1", 8000))]:
        assert instance_address(replace(web, socket=socket), 20001) == address


def test_app_routes_get_the_ready_instances_and_share_a_service(tmp_path):
    ready = {"web": [("127.0.0.1", 20001), ("127.0.0.1", 20002)]}
    snap = build_snapshot(config(tmp_path), 7, ready)
    services = {s.name: s for s in snap.services}
    assert services["app:web"].backends == (Backend("127.0.0.1", 20001),
                                            Backend("127.0.0.1", 20002))
    assert snap.routes[0].service == snap.routes[4].service == "app:web"
    assert services["route:/ext"].backends == (Backend("10.0.0.1", 80, 1),
                                               Backend("10.0.0.2", 80, 3))
    assert len(snap.services) == 2
    assert snap.version == 7 and snap.settings.upstream_timeout == 3.0
    assert snap.routes[2].static == str((tmp_path / "www").resolve())
    assert snap.routes[4].headers == (("x-version", "2"),)


def test_no_ready_instance_means_no_backend(tmp_path):
    snap = build_snapshot(config(tmp_path), 1, {})
    assert next(s for s in snap.services if s.name == "app:web").backends == ()


def test_json_round_trip(tmp_path):
    snap = build_snapshot(config(tmp_path), 3, {"web": [("127.0.0.1", 20001)]})
    assert Snapshot.from_json(snap.to_json()) == snap


def test_a_unix_backend_travels_as_its_address_with_port_0(tmp_path):
    data = {"apps": {"web": {"command": "x", "socket": "unix:run/web.sock", "instances": 2}},
            "routes": [{"path": "/ext", "servers": ["unix:/run/ext.sock"]},
                       {"app": "web"}]}
    cfg = config_from_data(data, tmp_path / "wharf.toml")
    web = cfg.apps["web"]
    address = instance_address(web, 0)
    assert address == (f"unix:{tmp_path}/run/web.sock", 0)
    snap = build_snapshot(cfg, 1, {"web": [address]})
    assert [s.backends for s in snap.services] == [(Backend("unix:/run/ext.sock", 0),),
                                                   (Backend(*address),)]
    assert Snapshot.from_json(snap.to_json()) == snap
