"""`[cluster]`, `[providers.etcd]` and `[providers.docker]`: what the loader accepts and
refuses, every problem with its key path."""

from pathlib import Path
from typing import Any

import pytest

from wharf.config import config_from_data
from wharf.errors import ConfigError

ETCD = ["http://127.0.0.1:2379"]


def problems(tmp_path: Path, data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_from_data(data, tmp_path / "wharf.toml")
    return [str(p) for p in info.value.problems]


def test_the_defaults_name_this_host_and_advertise_loopback(tmp_path: Path):
    config = config_from_data({"cluster": {"etcd": ETCD}, "providers": {"etcd": {
        "endpoints": ETCD}, "docker": {}}}, tmp_path / "wharf.toml")
    assert config.cluster is not None
    assert (config.cluster.ttl, config.cluster.prefix, config.cluster.advertise) == (
        10.0, "/wharf", "127.0.0.1")
    assert config.cluster.name
    assert config.providers.docker is not None
    assert config.providers.docker.endpoint == "unix:///var/run/docker.sock"


@pytest.mark.parametrize("advertise", ["10.0.0.2", "fe80::1", "host-a.internal"])
def test_advertise_takes_an_address_or_a_host_name(tmp_path: Path, advertise: str):
    config = config_from_data({"cluster": {"etcd": ETCD, "advertise": advertise}},
                              tmp_path / "wharf.toml")
    assert config.cluster is not None and config.cluster.advertise == advertise


def test_every_mistake_of_the_three_tables_is_listed_with_its_key_path(tmp_path: Path):
    assert problems(tmp_path, {
        "cluster": {"etcd": [], "name": "a b", "ttl": "0s", "advertise": "h:80",
                    "prefix": "wharf"},
        "providers": {"etcd": {"endpoints": ["unix:///e.sock"]},
                      "docker": {"endpoint": "tcp://x", "refresh": "-1s"}},
    }) == [
        "providers.docker.endpoint: 'tcp://x': expected http://HOST:PORT or unix:///PATH",
        "providers.docker.refresh: must be a duration like \"10s\" or \"250ms\", got '-1s'",
        "providers.etcd.endpoints: must be a list of http://HOST:PORT URLs, "
        "got 'unix:///e.sock'",
        "cluster.etcd: must be a list of etcd URLs like [\"http://127.0.0.1:2379\"], got []",
        "cluster.name: must be a host name of letters, digits, '.', '_' or '-', got 'a b'",
        "cluster.ttl: must be more than zero, got '0s'",
        "cluster.prefix: must be a key prefix like \"/wharf\", got 'wharf'",
        "cluster.advertise: must be an IP address or a host name the other hosts reach, "
        "like \"10.0.0.2\", got 'h:80'",
    ]


def test_prefer_is_none_or_local(tmp_path: Path):
    assert problems(tmp_path, {"cluster": {"etcd": ETCD}, "apps": {"web": {"command": "x"}},
                               "services": {"web": {"app": "web", "scope": "cluster",
                                                    "prefer": "everywhere"}}}) == [
        "services.web.prefer: must be one of \"none\", \"local\", got 'everywhere'"]
