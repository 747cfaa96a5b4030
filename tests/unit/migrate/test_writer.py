"""The TOML writer, the units and the format detection."""

import tomllib
from pathlib import Path

import pytest

from wharf.errors import UsageError
from wharf.migrate import detect_format
from wharf.migrate.toml_writer import dumps
from wharf.migrate.units import duration, parse_time, size_1024, split_address

DATA = {"routes": [{"path": "/", "health": {"path": "/h"}, "servers": ["a:1", {
    "address": "b:2", "weight": 2}]}],
        "apps": {"web app": {"command": ["x", "say \"hi\"\n"], "env": {"A.B": "1"},
                             "instances": 2, "startsecs": 0.5, "strip": True}},
        "proxy": {"listen": [":80"], "timeouts": {"idle": "5s"}},
        "tls": {"certificates": [{"cert": "c", "key": "k"}]}}


def test_what_is_written_reads_back_the_same():
    text = dumps(DATA, {"apps.web app": "x.conf:3", "routes.0": "y.conf:9"})
    assert tomllib.loads(text) == DATA
    assert text.index("[proxy]") < text.index("[tls]") < text.index("[apps.") < \
        text.index("[[routes]]")
    assert "# from x.conf:3\n[apps.\"web app\"]" in text


@pytest.mark.parametrize(("text", "unit", "seconds"), [
    ("1m30s", "s", 90.0), ("500ms", "s", 0.5), ("30000", "ms", 30.0), ("2h", "s", 7200.0)])
def test_times(text, unit, seconds):
    assert parse_time(text, unit) == seconds


def test_durations_sizes_and_addresses():
    assert [duration(s) for s in (0.25, 10, 300, 3600, 1.5)] == ["250ms", "10s", "5m", "1h",
                                                                 "1500ms"]
    assert [size_1024(s) for s in ("10m", "300M", "1g", "512")] == ["10MiB", "300MiB",
                                                                    "1GiB", 512]
    assert split_address("80") == ("", 80)
    assert split_address("[::1]:443") == ("::1", 443)
    assert split_address("backend", 80) == ("backend", 80)
    assert split_address("a:b:c") is None


@pytest.mark.parametrize(("name", "text", "fmt"), [
    ("Procfile", "web: x", "procfile"), ("ecosystem.config.js", "", "pm2"),
    ("apps.conf", "[program:x]\ncommand=y\n", "supervisord"),
    ("lb.cfg", "frontend f\n  bind :80\n", "haproxy"),
    ("site.conf", "server {\n listen 80;\n}\n", "nginx"),
    ("processes.yaml", "apps:\n  - script: a.js\n", "pm2")])
def test_the_format_is_told_from_the_name_or_the_content(name, text, fmt):
    assert detect_format(Path(name), text) == fmt


def test_an_unknown_format_asks_for_format():
    with pytest.raises(UsageError, match="--format"):
        detect_format(Path("notes.txt"), "hello world")
