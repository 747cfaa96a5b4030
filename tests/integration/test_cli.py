"""The `wharf` command line, run for real: config reports, state directories, exit codes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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
