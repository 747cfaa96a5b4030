"""`[services.NAME]` and routes that name them: what the loader accepts and refuses."""

from pathlib import Path
from typing import Any

import pytest

from wharf.config import config_from_data
from wharf.errors import ConfigError


def load(tmp_path: Path, services: dict[str, Any], *routes: dict[str, Any]):
    return config_from_data({"apps": {"web": {"command": "x"}}, "services": services,
                             "routes": list(routes)}, tmp_path / "wharf.toml")


def problems(tmp_path: Path, services: dict[str, Any], *routes: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, services, *routes)
    return [str(p) for p in info.value.problems]


def test_a_service_balances_an_app_or_servers_for_routes_that_name_it(tmp_path: Path):
    config = load(tmp_path, {"api": {"app": "web", "balance": "least_conn", "retries": 1,
                                     "health": {"path": "/h"}}},
                  {"path": "/a", "service": "api"}, {"path": "/b", "service": "api"})
    api = config.services["api"]
    assert (api.name, api.app, api.balance, api.retries) == ("api", "web", "least_conn", 1)
    assert api.health is not None and api.health.path == "/h"
    assert [r.service for r in config.routes] == ["api", "api"]


def test_a_route_that_names_a_service_may_not_balance_on_its_own(tmp_path: Path):
    assert problems(tmp_path, {"api": {"app": "web"}},
                    {"service": "api", "balance": "p2c", "health": {"path": "/"}}) == [
        "routes[0].balance: is a key of the service: set it in [services.api] (a route "
        "that names a service does not balance on its own)",
        "routes[0].health: is a key of the service: set it in [services.api] (a route "
        "that names a service does not balance on its own)"]


def test_an_unknown_service_is_named_with_what_it_may_have_meant(tmp_path: Path):
    assert problems(tmp_path, {"backend": {"app": "web"}}, {"service": "backends"}) == [
        "routes[0].service: no service named 'backends' (did you mean 'backend'?)"]
    assert problems(tmp_path, {}, {"service": "x"}) == [
        "routes[0].service: no service named 'x' (no [services] are defined)"]


def test_a_service_needs_one_target_an_app_that_exists_and_a_plain_name(tmp_path: Path):
    assert problems(tmp_path, {"both": {"app": "web", "servers": ["127.0.0.1:1"]},
                               "none": {}, "lost": {"app": "wbe"},
                               "app:web": {"app": "web"}}) == [
        "services.app:web: service names use letters, digits, '.', '_' and '-' (at most "
        "64), starting with a letter or digit",
        "services.both: needs exactly one of app or servers",
        "services.none: needs exactly one of app or servers",
        "services.lost.app: no app named 'wbe' (apps: web)"]


def test_a_route_has_one_target_a_service_or_a_shorthand(tmp_path: Path):
    assert problems(tmp_path, {"api": {"app": "web"}}, {"service": "api", "app": "web"}) == [
        "routes[0]: needs exactly one of service, app, servers, static or redirect"]


def test_the_file_providers_directory_is_beside_the_config(tmp_path: Path):
    config = config_from_data({"providers": {"file": {"directory": "conf.d"}}},
                              tmp_path / "wharf.toml")
    assert config.providers.file is not None
    assert config.providers.file.directory == tmp_path / "conf.d"


def test_with_the_docker_provider_a_route_may_name_a_service_its_containers_define(
        tmp_path: Path):
    config = config_from_data({"providers": {"docker": {}},
                               "routes": [{"host": "db.test", "service": "db"}]},
                              tmp_path / "wharf.toml")
    assert config.routes[0].service == "db" and config.services == {}


def test_scope_cluster_needs_a_cluster_table_and_an_app(tmp_path: Path):
    assert problems(tmp_path, {"api": {"app": "web", "scope": "cluster"},
                               "ext": {"servers": ["127.0.0.1:1"], "scope": "cluster"},
                               "one": {"app": "web", "prefer": "local"}},
                    {"path": "/x", "app": "web", "scope": "everywhere"}) == [
        "routes[0].scope: must be one of \"local\", \"cluster\", got 'everywhere'",
        "services.api.scope: \"cluster\" needs a [cluster] table (its etcd endpoints and "
        "this host's name)",
        "services.ext.scope: \"cluster\" needs a [cluster] table (its etcd endpoints and "
        "this host's name)",
        "services.ext.scope: \"cluster\" applies to an app's instances; servers are the same "
        "on every host",
        "services.one.prefer: needs scope = \"cluster\" (on one host every instance is local)"]


def test_a_cluster_service_balances_over_every_host(tmp_path: Path):
    config = config_from_data({"apps": {"web": {"command": "x"}},
                               "cluster": {"etcd": ["http://127.0.0.1:2379"], "name": "a"},
                               "services": {"api": {"app": "web", "scope": "cluster",
                                                    "prefer": "local"}},
                               "routes": [{"service": "api"},
                                          {"path": "/b", "app": "web", "scope": "cluster"}]},
                              tmp_path / "wharf.toml")
    assert (config.services["api"].scope, config.services["api"].prefer) == ("cluster", "local")
    assert config.routes[1].scope == "cluster"
