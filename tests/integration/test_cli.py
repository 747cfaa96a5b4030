"""The `wharf` command line, run for real: config reports, state directories, exit codes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.integration.conftest import pid_alive, wait_until
from tests.unit.config.test_load import MANY_MISTAKES

PY = sys.executable


def wharf_cli(cwd: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `wharf ARGS` in `cwd`; return the finished process."""
    return subprocess.run([PY, "-m", "wharf", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_check_lists_every_mistake_with_its_key_path_and_exits_2(tmp_path):
    (tmp_path / "wharf.toml").write_text(textwrap.dedent(MANY_MISTAKES))
    result = wharf_cli(tmp_path, "check")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == f"wharf: {tmp_path / 'wharf.toml'}: 18 problems:"
    keys = [line.strip().split(":")[0] for line in lines[1:]]
    assert sorted(keys) == sorted([
        "daemon.port_range", "apps.web.exec_mode", "apps.web.max_memory_restart",
        "apps.web.instances", "apps.web.startsecs", "apps.worker.script",
        "apps.worker.stopwaitsecs", "apps.worker.command", "proxy.workers", "routes[3].balance",
        "routes[3].health.interval", "routes[3].health.rise", "apps.bad name",
        "apps.worker.cwd", "routes[0].app", "routes[1].static", "routes[2]", "proxy.listen[0]",
    ])
    assert "did you mean 'exit_codes'" not in result.stderr


SLEEPER = f'command = ["{PY}", "-c", "import time; time.sleep(600)"]'


def _pids(cwd: Path, config: str) -> list[int]:
    result = wharf_cli(cwd, "-c", config, "status", "--json")
    assert result.returncode == 0, result.stderr
    return [r["pid"] for r in json.loads(result.stdout) if r["kind"] == "instance" and r["pid"]]


def test_two_configs_in_one_directory_run_two_daemons(tmp_path):
    (tmp_path / "a.toml").write_text(f"[apps.alpha]\n{SLEEPER}\n")
    (tmp_path / "b.toml").write_text(f"[apps.beta]\n{SLEEPER}\n")
    seen: set[int] = set()
    try:
        for config in ("a.toml", "b.toml"):
            started = wharf_cli(tmp_path, "-c", config, "up", "-d")
            assert started.returncode == 0, started.stderr
        assert (tmp_path / ".wharf" / "a" / "wharf.sock").exists()
        assert (tmp_path / ".wharf" / "b" / "daemon.log").exists()
        alpha = wait_until(lambda: _pids(tmp_path, "a.toml"), message="alpha's pid")
        seen.update(alpha)  # type: ignore[arg-type]
        seen.update(wait_until(lambda: _pids(tmp_path, "b.toml"), message="beta's pid"))
        assert wharf_cli(tmp_path, "-c", "b.toml", "down").returncode == 0
        assert wharf_cli(tmp_path, "-c", "b.toml", "status").returncode == 1  # no daemon
        assert _pids(tmp_path, "a.toml") == alpha
        assert all(pid_alive(p) for p in alpha)  # type: ignore[union-attr]
    finally:
        for config in ("a.toml", "b.toml"):
            wharf_cli(tmp_path, "-c", config, "down")
        for pid in seen:
            if pid_alive(pid):
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)


def test_status_without_a_config_file_says_so(tmp_path):
    result = wharf_cli(tmp_path, "status")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"wharf: no config file: {tmp_path / 'wharf.toml'}",
        "hint: run wharf in the directory of your wharf.toml, or name the file with `-c FILE`",
    ]


def test_a_reload_refuses_to_move_the_state_dir_and_rolls_nothing(wharf):
    wharf.write_config(f"[apps.web]\n{SLEEPER}\ninstances = 2\n")
    wharf.up()
    wharf.wait_state("web", "RUNNING", 1)
    before = {(r["instance"], r["pid"]) for r in wharf.instances("web")}
    wharf.config.write_text(f"[daemon]\nstate_dir = \"elsewhere\"\n[apps.web]\n{SLEEPER}\n"
                            "instances = 3\n")
    result = wharf.run("reload")
    assert result.returncode == 2, result.stderr
    assert "daemon.state_dir: cannot change in a reload" in result.stderr
    assert "hint: to move it, put the old value back, stop the daemon with `wharf down`" \
        in result.stderr
    assert {(r["instance"], r["pid"]) for r in wharf.instances("web")} == before
    assert not (wharf.root / "elsewhere").exists()


def test_up_after_an_edit_of_state_dir_finds_the_daemon_already_running(wharf):
    wharf.write_config(f"[apps.web]\n{SLEEPER}\n")
    wharf.up()
    pid = wharf.wait_state("web", "RUNNING")["pid"]
    wharf.config.write_text(f"[daemon]\nstate_dir = \"elsewhere\"\n[apps.web]\n{SLEEPER}\n")
    result = wharf.run("up", "-d")
    try:
        assert result.returncode == 1
        assert "a Wharf daemon already runs for" in result.stderr
        assert not (wharf.root / "elsewhere").exists()
        assert wharf.row("web")["pid"] == pid
    finally:
        if (wharf.root / "elsewhere" / "wharf.sock").exists():  # a second daemon started
            wharf.run("down")
