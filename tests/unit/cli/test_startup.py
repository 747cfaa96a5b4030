"""The systemd unit's text: quoting, naming, and the timeouts taken from the config."""

from __future__ import annotations

from pathlib import Path

from wharf.cli.startup import quote, stop_timeout, systemd_unit, unit_name
from wharf.config.load import config_from_data


def config(data: dict, path: str = "/srv/my site/wharf.toml"):
    return config_from_data(data, Path(path))


APPS = {"apps": {"web": {"command": "sleep 9", "stop_timeout": "40s", "cwd": "/"},
                 "job": {"command": "sleep 9", "stop_timeout": "5s", "cwd": "/"}}}


def test_words_with_spaces_quotes_percent_or_dollar_stay_literal():
    assert quote("/usr/bin/wharf") == "/usr/bin/wharf"
    assert quote("/srv/my site/wharf.toml") == '"/srv/my site/wharf.toml"'
    assert quote('a"b\\c') == '"a\\"b\\\\c"'
    assert quote("100%$HOME") == "100%%$$HOME"


def test_the_unit_is_named_after_the_config_directory_or_the_name_given():
    assert unit_name(config(APPS), None) == "wharf-my-site.service"
    assert unit_name(config(APPS), "shop") == "wharf-shop.service"


def test_systemd_waits_for_the_slowest_stop_and_the_proxy_drain_before_sigkill():
    without_proxy = stop_timeout(config(APPS))
    assert without_proxy >= 40 + 5  # the slowest app's stop_timeout, with the daemon's margin
    routed = {**APPS, "routes": [{"path": "/", "app": "web"}]}
    assert stop_timeout(config(routed)) > without_proxy  # the workers drain first


def test_the_unit_runs_up_in_the_foreground_and_signals_the_daemon_alone():
    text = systemd_unit(config(APPS), False, ["/opt/wharf/bin/wharf"], "/usr/bin:/bin")
    lines = text.splitlines()
    assert 'ExecStart=/opt/wharf/bin/wharf up -c "/srv/my site/wharf.toml"' in lines
    assert 'ExecReload=/opt/wharf/bin/wharf reload -c "/srv/my site/wharf.toml"' in lines
    assert 'WorkingDirectory="/srv/my site"' in lines
    for line in ("Type=notify", "KillMode=mixed", "Restart=on-failure", "WatchdogSec=30",
                 "Environment=PATH=/usr/bin:/bin", "WantedBy=multi-user.target"):
        assert line in lines
    assert not any(line.startswith("ExecStop=") for line in lines)  # SIGTERM is the stop


def test_a_user_unit_is_wanted_by_the_default_target():
    text = systemd_unit(config(APPS), True, ["wharf"], "/bin")
    assert "WantedBy=default.target" in text and "network-online" not in text
