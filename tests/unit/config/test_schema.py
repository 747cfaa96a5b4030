"""The schema walker's 'did you mean': it suggests the key a slip was meant for, nothing else."""

import pytest

from wharf.config.model import AppConfig, DaemonConfig, ProxyConfig, RouteConfig
from wharf.config.schema import suggestion


def keys(cls: type) -> list[str]:
    return [name for name in cls.__dataclass_fields__ if name != "name"]


@pytest.mark.parametrize(("cls", "slip", "meant"), [
    (AppConfig, "comand", "command"),
    (AppConfig, "instnces", "instances"),
    (AppConfig, "start_secs", "startsecs"),
    (AppConfig, "stoptimeout", "stop_timeout"),
    (AppConfig, "logs_backups", "log_backups"),
    (AppConfig, "readypath", "ready_path"),
    (AppConfig, "exit_code", "exit_codes"),
    (AppConfig, "max_mem", "max_memory"),
    (AppConfig, "stdout", "stdout_log"),
    (DaemonConfig, "port_rang", "port_range"),
    (ProxyConfig, "listn", "listen"),
    (RouteConfig, "balancer", "balance"),
    (RouteConfig, "healthcheck", "health"),
    (RouteConfig, "cookies", "cookie"),
])
def test_a_slip_suggests_the_key_it_was_meant_for(cls, slip, meant):
    assert suggestion(slip, keys(cls)) == meant


@pytest.mark.parametrize(("cls", "unrelated"), [
    (AppConfig, "exec_mode"),      # used to suggest exit_codes
    (AppConfig, "timeout"),        # which timeout? none is meant
    (AppConfig, "inotify"),
    (AppConfig, "interpreter"),
    (AppConfig, "priority"),
    (AppConfig, "ax"),
    (RouteConfig, "upstream"),
    (ProxyConfig, "ssl"),
])
def test_an_unrelated_key_suggests_nothing(cls, unrelated):
    assert suggestion(unrelated, keys(cls)) is None
