"""The daemon under systemd: sd_notify over a real datagram socket bound by the test as
NOTIFY_SOCKET (systemd's side of the protocol), and the unit `wharf startup systemd` writes,
checked by `systemd-analyze verify`."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import PY, Wharf, wait_until

CONFIG = """
    [apps.web]
    command = ["sh", "-c",
               "echo notify=${NOTIFY_SOCKET:-unset} watchdog=${WATCHDOG_USEC:-unset}; sleep 600"]
    instances = 2
    startsecs = 0.3
"""


class Systemd:
    """The listening end of NOTIFY_SOCKET: collects every message the daemon sends."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []

    def receive(self) -> None:
        """Read what has arrived."""
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def wait_for(self, key: str, value: str = "1", after: int = 0, timeout: float = 20.0
                 ) -> int:
        """The index of the first message from `after` on with key=value."""
        def found() -> int | None:
            self.receive()
            return next((i + 1 for i, m in enumerate(self.messages) if i >= after
                         and m.get(key) == value), None)

        return int(wait_until(found, timeout, f"{key}={value}")) - 1  # type: ignore[arg-type]


@pytest.fixture
def systemd(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Systemd]:
    """A notify socket (a path, or an abstract name with `abstract`), in the environment of the
    daemon the test starts."""
    directory = tempfile.mkdtemp(prefix="wharf-sd-", dir="/tmp")  # sun_path is short
    address = f"@wharf-test-{uuid.uuid4().hex}" if getattr(request, "param", "") == "abstract" \
        else f"{directory}/notify"
    listener = Systemd(address)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    try:
        yield listener
    finally:
        listener.sock.close()
        shutil.rmtree(directory)


def test_ready_once_the_apps_are_up_with_a_status_line(wharf: Wharf, systemd: Systemd):
    wharf.write_config(CONFIG)
    wharf.up()
    ready = systemd.wait_for("READY")
    assert systemd.messages[ready]["STATUS"] == "1 app, 2 instances running"
    assert [r["state"] for r in wharf.status()] == ["RUNNING", "RUNNING"]


def test_the_apps_do_not_inherit_the_notify_socket(wharf: Wharf, systemd: Systemd,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    wharf.write_config(CONFIG)
    wharf.up()
    systemd.wait_for("READY")
    log = wharf.root / ".wharf" / "logs" / "web.out.log"
    wait_until(lambda: log.exists() and log.read_text().count("notify=") == 2)
    assert log.read_text().count("notify=unset watchdog=unset") == 2


def test_a_reload_is_framed_by_reloading_and_ready(wharf: Wharf, systemd: Systemd):
    wharf.write_config(CONFIG)
    wharf.up()
    first = systemd.wait_for("READY")
    wharf.write_config(CONFIG.replace("instances = 2", "instances = 3"))
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert wharf.run("reload").returncode == 0
    reloading = systemd.wait_for("RELOADING", after=first + 1)
    again = systemd.wait_for("READY", after=reloading)
    assert int(systemd.messages[reloading]["MONOTONIC_USEC"]) >= before
    assert systemd.messages[again]["STATUS"] == "1 app, 3 instances running"


def test_a_refused_reload_still_ends_with_ready(wharf: Wharf, systemd: Systemd):
    wharf.write_config(CONFIG)
    wharf.up()
    first = systemd.wait_for("READY")
    wharf.config.write_text("[apps.web]\ncommand = 3\n")
    assert wharf.run("reload").returncode == 2
    systemd.wait_for("READY", after=systemd.wait_for("RELOADING", after=first + 1))


@pytest.mark.parametrize("systemd", ["abstract"], indirect=True)
def test_watchdog_pings_come_every_half_interval(wharf: Wharf, systemd: Systemd,
                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s
    wharf.write_config(CONFIG)
    wharf.up()
    seen = systemd.wait_for("READY")
    for _ in range(3):
        seen = systemd.wait_for("WATCHDOG", after=seen + 1)


def test_a_watchdog_for_another_pid_is_not_ours(wharf: Wharf, systemd: Systemd,
                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", "1")
    wharf.write_config(CONFIG)
    wharf.up()
    systemd.wait_for("READY")
    assert wharf.run("reload").returncode == 0  # a round trip through the loop, twice over
    systemd.wait_for("READY", after=systemd.wait_for("RELOADING"))
    assert not any("WATCHDOG" in m for m in systemd.messages)


def test_down_says_stopping(wharf: Wharf, systemd: Systemd):
    wharf.write_config(CONFIG)
    wharf.up()
    first = systemd.wait_for("READY")
    assert wharf.run("down").returncode == 0
    systemd.wait_for("STOPPING", after=first + 1)
    assert wharf.daemon is not None and wharf.daemon.wait(timeout=20) == 0


# -- the unit --------------------------------------------------------------------------------

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze (Debian's systemd) is not installed")


def startup(wharf: Wharf, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "wharf", "startup", "systemd", "-c", str(wharf.config),
                           *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def verify(unit: Path, *args: str, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify`: it needs no running systemd, only the unit and what it runs."""
    return subprocess.run(["systemd-analyze", *args, "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **(env or {})})


@needs_analyze
def test_the_system_unit_passes_systemd_analyze_verify(wharf: Wharf, tmp_path: Path):
    wharf.write_config(CONFIG)
    result = startup(wharf, "--print")
    assert result.returncode == 0, result.stderr
    unit = tmp_path / "wharf-test.service"
    unit.write_text(result.stdout)
    checked = verify(unit)
    assert checked.returncode == 0 and unit.name not in checked.stderr, checked.stderr
    assert f"ExecStart={PY} -m wharf up -c {wharf.config}\n" in result.stdout


@needs_analyze
def test_a_user_unit_is_written_where_systemd_looks_and_passes_verify(wharf: Wharf,
                                                                      tmp_path: Path):
    wharf.write_config(CONFIG)
    home = tmp_path / "config"
    runtime = Path(tempfile.mkdtemp(prefix="wharf-rt-", dir="/tmp"))  # --user needs one
    try:
        result = startup(wharf, "--user", "--name", "site", env={"XDG_CONFIG_HOME": str(home)})
        assert result.returncode == 0, result.stderr
        unit = home / "systemd" / "user" / "wharf-site.service"
        assert f"wrote {unit}" in result.stdout
        assert "systemctl --user enable --now wharf-site" in result.stdout
        assert "WantedBy=default.target" in unit.read_text()
        checked = verify(unit, "--user", env={"XDG_RUNTIME_DIR": str(runtime)})
        assert checked.returncode == 0 and unit.name not in checked.stderr, checked.stderr
    finally:
        shutil.rmtree(runtime)


@needs_analyze
def test_verify_catches_a_unit_whose_command_is_gone(wharf: Wharf, tmp_path: Path):
    """The check above is worth something: a unit pointing at a missing wharf fails it."""
    wharf.write_config(CONFIG)
    unit = tmp_path / "wharf-test.service"
    unit.write_text(startup(wharf, "--print").stdout.replace(PY, "/nonexistent/python"))
    assert verify(unit).returncode != 0


def test_a_bad_config_writes_no_unit(wharf: Wharf, tmp_path: Path):
    wharf.config.write_text("[apps.web]\ncommand = 3\n")
    result = startup(wharf, "--user", env={"XDG_CONFIG_HOME": str(tmp_path / "c")})
    assert result.returncode == 2 and "apps.web.command" in result.stderr
    assert not (tmp_path / "c").exists()
