"""`[admin]`: off unless there, its token file, and who may reach it."""

from __future__ import annotations

from pathlib import Path

import pytest

from wharf.config import config_from_data
from wharf.errors import ConfigError


def load(tmp_path: Path, admin: dict) -> object:
    return config_from_data({"admin": admin, "apps": {"a": {"command": "sleep 1"}}},
                            tmp_path / "wharf.toml")


def test_admin_is_off_unless_configured(tmp_path: Path):
    config = config_from_data({"apps": {}}, tmp_path / "wharf.toml")
    assert config.admin is None


def test_a_loopback_listener_gets_a_token_file_in_the_state_dir(tmp_path: Path):
    config = load(tmp_path, {"listen": "127.0.0.1:9180"})
    assert config.admin.listen == ("127.0.0.1", 9180)  # type: ignore[attr-defined]
    assert config.admin.token_file == tmp_path / ".wharf" / "admin.token"  # type: ignore
    assert config.admin.metrics_auth is False  # type: ignore[attr-defined]


@pytest.mark.parametrize("listen", ["0.0.0.0:9180", ":9180", "[::]:9180", "192.0.2.1:9180"])
def test_a_listener_others_can_reach_must_name_its_token_file(tmp_path: Path, listen: str):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, {"listen": listen})
    assert [p.path for p in error.value.problems] == ["admin.token_file"]
    assert error.value.exit_code == 2


def test_a_named_token_file_is_resolved_beside_the_config(tmp_path: Path):
    config = load(tmp_path, {"listen": "0.0.0.0:9180", "token_file": "secret/token"})
    assert config.admin.token_file == tmp_path / "secret" / "token"  # type: ignore


def test_a_token_file_others_can_read_is_refused(tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("abc\n")
    token.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load(tmp_path, {"token_file": str(token)})


def test_the_admin_port_may_not_be_the_proxys(tmp_path: Path):
    with pytest.raises(ConfigError) as error:
        config_from_data({"admin": {"listen": "127.0.0.1:8080"},
                          "proxy": {"listen": ["127.0.0.1:8080"]}}, tmp_path / "wharf.toml")
    assert "port 8080" in str(error.value)


def test_unknown_admin_keys_are_reported(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"admin\.tokenfile"):
        load(tmp_path, {"tokenfile": "x"})
