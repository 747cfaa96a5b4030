"""What a reload may not change: the state directory."""

from dataclasses import replace
from pathlib import Path

import pytest

from wharf.config.model import Config, DaemonConfig
from wharf.config.reload_checks import check_reloadable
from wharf.errors import ConfigError


def test_a_new_state_dir_is_refused_with_its_key_path_and_a_hint():
    old = Config(daemon=DaemonConfig(state_dir=Path("/srv/.wharf")), path=Path("/srv/wharf.toml"))
    new = replace(old, daemon=DaemonConfig(state_dir=Path("/srv/run")))
    with pytest.raises(ConfigError) as info:
        check_reloadable(old, new)
    assert [p.path for p in info.value.problems] == ["daemon.state_dir"]
    assert "/srv/.wharf -> /srv/run" in info.value.problems[0].message
    assert "`wharf down`" in info.value.hint and "`wharf up`" in info.value.hint


def test_everything_else_may_change():
    old = Config(path=Path("/srv/wharf.toml"))
    check_reloadable(old, replace(old, daemon=DaemonConfig(port_range=(30000, 30100))))
