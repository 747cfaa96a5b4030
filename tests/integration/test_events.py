"""`wharf events`: what happened in a real daemon, printed and followed."""

from __future__ import annotations

import json
import subprocess
import threading

from tests.integration.conftest import PY, Wharf, wait_until

CONFIG = """
    [apps.crasher]
    command = ["{py}", "-c", "import time; time.sleep(0.6); raise SystemExit(3)"]
    startsecs = "0.3s"
    backoff = "0.1s"
    [apps.steady]
    command = "{py} {apps}/sleeper.py"
    startsecs = 0
"""


def events(wharf: Wharf, *args: str) -> list[dict]:
    result = wharf.run("events", "--json", "-n", "1000", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_crash_and_its_restart_are_events_with_the_exit_code(wharf: Wharf):
    wharf.write_config(CONFIG)
    wharf.up()
    exited = wait_until(lambda: [e for e in events(wharf) if e["kind"] == "instance.exited"
                                 and e["app"] == "crasher"], message="an exit event")
    crash = exited[0]
    assert crash["exit_code"] == 3 and crash["exit_signal"] is None
    assert crash["level"] == "warning" and crash["instance"] == 0
    after = wait_until(lambda: [e for e in events(wharf, "--after", str(crash["seq"]))
                                if e["kind"] == "instance.started" and e["app"] == "crasher"],
                       message="the restart after the crash")
    assert after[0]["pid"] != crash["pid"]  # type: ignore[index]


def test_events_prints_one_line_each_oldest_first(wharf: Wharf):
    wharf.write_config(CONFIG)
    wharf.up()
    result = wharf.run("events", "-n", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    seqs = [e["seq"] for e in events(wharf, "-n", "3")]
    assert seqs == sorted(seqs)


def test_events_follow_prints_the_events_of_a_restart(wharf: Wharf):
    wharf.write_config(CONFIG)
    wharf.up()
    old = wharf.row("steady")["pid"]
    last = max(e["seq"] for e in events(wharf))
    # From the last event on, not "-n 0": a follower that connects after the restart began
    # would miss its first events, and the restart does not wait for the follower.
    follower = subprocess.Popen([PY, "-m", "wharf", "-c", str(wharf.config), "events", "-f",
                                 "--json", "-n", "1000", "--after", str(last)],
                                stdout=subprocess.PIPE, text=True)
    seen: list[dict] = []
    reader = threading.Thread(target=lambda: seen.extend(
        json.loads(line) for line in follower.stdout), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        assert wharf.run("restart", "steady").returncode == 0
        new = wharf.row("steady")["pid"]
        wait_until(lambda: any(e["kind"] == "instance.started" and e["pid"] == new
                               for e in list(seen)), message="the follower to see the restart")
        stopped = [e for e in seen if e["kind"] == "instance.stopped" and e["app"] == "steady"]
        assert stopped and stopped[0]["pid"] == old
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_a_refused_reload_is_an_event(wharf: Wharf):
    wharf.write_config(CONFIG)
    wharf.up()
    wharf.config.write_text(wharf.config.read_text() + "\n[apps.bad]\nstartsecs = 1\n")
    assert wharf.run("reload").returncode == 2
    refused = [e for e in events(wharf) if e["kind"] == "config.refused"]
    assert refused and "apps.bad.command" in refused[0]["message"]
