"""`[supervisor_rpc]`: where it listens, and who may use it."""

from __future__ import annotations

from pathlib import Path

import pytest

from wharf.config.load import config_from_data
from wharf.errors import ConfigError

APPS = {"apps": {"web": {"command": "sleep 9", "cwd": "/"}}}


def load(rpc: dict):
    return config_from_data({**APPS, "supervisor_rpc": rpc}, Path("/srv/site/wharf.toml"))


def problems(rpc: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load(rpc)
    return {p.path: p.message for p in caught.value.problems}


def test_a_unix_socket_is_relative_to_the_config_file():
    rpc = load({"listen": "unix:run/supervisor.sock"}).supervisor_rpc
    assert rpc is not None and rpc.unix_path == Path("/srv/site/run/supervisor.sock")
    assert rpc.url == "unix:///srv/site/run/supervisor.sock"


def test_a_loopback_tcp_listener_may_go_without_a_password():
    rpc = load({"listen": "127.0.0.1:9001"}).supervisor_rpc
    assert rpc is not None and rpc.listen == ("127.0.0.1", 9001)
    assert rpc.url == "http://127.0.0.1:9001"


def test_a_listener_others_can_reach_needs_a_password():
    found = problems({"listen": "0.0.0.0:9001"})
    assert "supervisor_rpc.password" in found and "loopback" in found["supervisor_rpc.password"]
    assert load({"listen": "0.0.0.0:9001", "username": "u", "password": "p"}).supervisor_rpc


def test_username_and_password_come_together_and_listen_is_required():
    assert "supervisor_rpc.password" in problems({"listen": "unix:/s", "username": "u"})
    assert "supervisor_rpc.username" in problems({"listen": "unix:/s", "password": "p"})
    assert problems({})["supervisor_rpc.listen"] == "missing required key"


def test_a_bad_listen_says_what_it_takes_and_a_shared_port_is_caught():
    assert "unix:/path" in problems({"listen": "9001"})["supervisor_rpc.listen"]
    clash = config_from_data
    with pytest.raises(ConfigError) as caught:
        clash({**APPS, "admin": {"listen": "127.0.0.1:9001"},
               "supervisor_rpc": {"listen": "127.0.0.1:9001"}}, Path("/srv/site/wharf.toml"))
    assert any(p.path == "supervisor_rpc.listen" for p in caught.value.problems)
