"""The operations keys of an app: depends_on, watch, cron_restart, time and total log limits;
every problem at once with its key path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from wharf.config import load_config
from wharf.config.depends import find_cycle
from wharf.errors import ConfigError


def load(tmp_path: Path, text: str):
    path = tmp_path / "wharf.toml"
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return [str(p) for p in info.value.problems]


def test_the_keys_are_read_and_watch_paths_resolve_in_the_cwd(tmp_path):
    (tmp_path / "srv" / "src").mkdir(parents=True)
    config = load(tmp_path, """
        [apps.migrate]
        command = "true"
        autorestart = "never"
        [apps.web]
        command = "true"
        cwd = "srv"
        depends_on = ["migrate"]
        watch = ["src"]
        watch_ignore = ["*.pyc", "node_modules/"]
        watch_delay = "200ms"
        cron_restart = "0 4 * * *"
        log_rotate = "daily"
        log_max_total = "1GB"
        log_compress = true
    """)
    web = config.apps["web"]
    assert web.depends_on == ("migrate",)
    assert web.watch == (tmp_path / "srv" / "src",)
    assert web.watch_ignore == ("*.pyc", "node_modules") and web.watch_delay == 0.2
    assert str(web.cron_restart) == "0 4 * * *"
    assert (web.log_rotate, web.log_max_total, web.log_compress) == ("daily", 10**9, True)
    assert config.apps["migrate"].watch == () and config.apps["migrate"].cron_restart is None


def test_every_problem_is_reported_with_its_key_path(tmp_path):
    found = problems(tmp_path, """
        [apps.a]
        command = "true"
        depends_on = ["b", "nope", "a", "wharf-proxy"]
        watch = ["missing"]
        watch_ignore = "x"
        cron_restart = "61 * * * *"
        log_rotate = "weekly"
        log_max_total = "lots"
        [apps.b]
        command = "true"
        depends_on = ["c"]
        [apps.c]
        command = "true"
        depends_on = ["a", "a"]
    """)
    assert sorted(found) == sorted([
        "apps.a.watch_ignore: must be a list of names or globs like [\"*.pyc\", "
        "\"node_modules\"], got 'x'",
        "apps.a.cron_restart: minute: '61' is not a number 0-59",
        "apps.a.log_rotate: must be one of \"hourly\", \"daily\", got 'weekly'",
        "apps.a.log_max_total: must be a size like \"512MB\" or \"64KiB\", got 'lots'",
        "apps.c.depends_on: names a more than once",
        f"apps.a.watch[0]: no such file or directory: {tmp_path / 'missing'}",
        "apps.a.depends_on: no app named 'nope' (apps: b, c)",
        "apps.a.depends_on: 'a' cannot depend on itself",
        "apps.a.depends_on: no app named 'wharf-proxy' (apps: b, c)",
    ])


def test_a_cycle_is_named_from_end_to_end(tmp_path):
    found = problems(tmp_path, """
        [apps.a]
        command = "true"
        depends_on = ["b"]
        [apps.b]
        command = "true"
        depends_on = ["c"]
        [apps.c]
        command = "true"
        depends_on = ["a"]
    """)
    assert found == ["apps.a.depends_on: dependency cycle: a -> b -> c -> a"]



@pytest.mark.parametrize(("graph", "cycle"), [
    ({}, []),
    ({"a": ("b",), "b": ()}, []),
    ({"a": ("b", "c"), "b": ("c",), "c": ()}, []),  # a diamond is no cycle
    ({"a": ("a",)}, ["a", "a"]),
    ({"a": ("b",), "b": ("a",)}, ["a", "b", "a"]),
    ({"x": (), "a": ("b",), "b": ("c",), "c": ("b",)}, ["b", "c", "b"]),
    ({"a": ("z",)}, []),  # unknown names are leaves
])
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle


def test_supervisor_and_pm2_spellings_say_what_to_write(tmp_path):
    found = problems(tmp_path, """
        [apps.a]
        command = "true"
        ignore_watch = ["x"]
        priority = 5
    """)
    assert found[0] == "apps.a.ignore_watch: unknown key (PM2's name; Wharf's is 'watch_ignore')"
    assert found[1].startswith("apps.a.priority: unknown key (Supervisor's priority orders")
