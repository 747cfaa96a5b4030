"""What a newcomer sees: a quiet foreground log, a status that says where things listen and
when a retry is due, and logs that explain an app that never started or merge every app."""

from __future__ import annotations

import os
import select
import subprocess
import time

from tests.integration.conftest import PY, Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import get

WEB = """
    [proxy]
    listen = ["127.0.0.1:{port}"]

    [apps.web]
    command = "{{py}} {{apps}}/httpapp.py"
    instances = 3
    startsecs = 0

    [[routes]]
    path = "/"
    app = "web"
"""


def table_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """The instance rows of the `wharf status` table by (app, instance), split on spaces."""
    rows = {}
    for line in text.split("\n\n")[0].splitlines()[1:]:
        if line.startswith("  "):  # a note under the table
            continue
        cells = line.split()
        rows[(cells[0], cells[1])] = cells
    return rows


def test_the_foreground_log_has_no_line_per_snapshot(wharf: Wharf):
    """Every state change of an instance sends the workers a snapshot; the terminal gets the
    addresses the proxy listens on, not a line per snapshot."""
    port, second = free_port(), free_port()
    wharf.write_config(WEB.format(port=port))
    wharf.up()
    wharf.wait_ready("web", 3)
    wait_until(lambda: get(port, "/").status == 200, message="the proxy to serve web")
    # A reload that adds a listener: its line comes after those of every earlier snapshot.
    wharf.write_config(WEB.format(port=port).replace(
        f'"127.0.0.1:{port}"]', f'"127.0.0.1:{port}", "127.0.0.1:{second}"]'))
    assert wharf.run("reload").returncode == 0
    wait_until(lambda: f"127.0.0.1:{second}" in wharf.daemon_log.read_text(),
               message="the new listener in the foreground log")
    log = wharf.daemon_log.read_text()
    assert "snapshot" not in log
    assert log.count(f"wharf-proxy: listening on http://127.0.0.1:{port}") == 1


def test_status_shows_where_the_proxy_listens_and_no_port_for_an_app_without_one(wharf: Wharf):
    port, fixed = free_port(), free_port()
    wharf.write_config(WEB.format(port=port) + f"""
    [apps.worker]
    command = "{{py}} {{apps}}/sleeper.py"
    startsecs = 0

    [apps.fixed]
    command = "{{py}} {{apps}}/sleeper.py"
    port = {fixed}
    startsecs = 0

    [apps.templated]
    command = "{{py}} {{apps}}/sleeper.py --port {{port}}"
    startsecs = 0
    """)
    wharf.up()
    wharf.wait_ready("web", 3)
    for app in ("worker", "fixed", "templated", "wharf-proxy"):
        wharf.wait_state(app, "RUNNING")
    rows = {r["app"]: r for r in wharf.status() if r["instance"] == 0}
    assert rows["wharf-proxy"]["listen"] == [f"127.0.0.1:{port}"]
    assert rows["wharf-proxy"]["port"] == 0 and not rows["wharf-proxy"]["uses_port"]
    assert {app: rows[app]["uses_port"] for app in ("web", "worker", "fixed", "templated")} \
        == {"web": True, "worker": False, "fixed": True, "templated": True}
    assert rows["worker"]["listen"] == [] and isinstance(rows["worker"]["port"], int)
    result = wharf.run("status")
    assert result.returncode == 0
    table = table_rows(result.stdout)
    assert table[("wharf-proxy", "0")][4] == f"127.0.0.1:{port}"
    assert table[("worker", "0")][4] == "-"
    assert table[("fixed", "0")][4] == str(fixed)
    assert table[("web", "0")][4] == str(rows["web"]["port"])


def test_status_says_when_an_instance_in_backoff_tries_again(wharf: Wharf):
    wharf.write_config("""
        [apps.crash]
        command = ["{py}", "-c", "raise SystemExit(3)"]
        startsecs = "5s"
        startretries = 100
        backoff = "60s"
        backoff_max = "60s"

        [apps.fine]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
    """)
    wharf.up()
    row = wharf.wait_state("crash", "BACKOFF")
    assert 0 <= row["next_try_in_s"] <= 60
    assert wharf.row("fine")["next_try_in_s"] is None
    result = wharf.run("status")
    assert result.returncode == 0
    line = next(x for x in result.stdout.splitlines() if x.startswith("crash "))
    assert "BACKOFF (next try in " in line


def test_logs_of_an_app_that_never_started_say_why(wharf: Wharf):
    wharf.write_config("""
        [apps.ok]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0

        [apps.bad]
        command = "./missing-binary"
        startretries = 0
    """)
    old_run = wharf.root / ".wharf" / "logs" / "bad.out.log"  # from a run that worked
    old_run.parent.parent.mkdir(mode=0o700)
    old_run.parent.mkdir()
    old_run.write_text("2026-01-01 00:00:00.000 bad.0 | hello from before\n")
    wharf.up()
    wharf.wait_state("bad", "FATAL")
    result = wharf.run("logs", "bad")
    assert result.returncode == 1
    assert result.stdout.endswith("bad.0 | hello from before\n")
    assert "bad is not running: it never started" in result.stderr
    old_run.unlink()
    for args in (("logs", "bad"), ("logs", "bad", "-f")):
        result = wharf.run(*args, timeout=30)
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert "bad has no output: it never started" in result.stderr
        assert "missing-binary" in result.stderr
        assert "hint: fix apps.bad.command" in result.stderr
    wharf.wait_state("ok", "RUNNING")
    # An app that runs and wrote something is not concerned.
    wait_until(lambda: "ready app=ok" in wharf.run("logs", "ok").stdout, message="ok's output")


TWO_WRITERS = """
    [apps.a]
    command = ["{py}", "-u", "-c", "import time\\nfor i in range(5): print(f'a{i}'); time.sleep(0.02)\\ntime.sleep(3600)"]
    startsecs = 0
    autorestart = "never"

    [apps.b]
    command = ["{py}", "-u", "-c", "import sys, time\\nfor i in range(5): print(f'b{i}', file=sys.stderr if i == 2 else sys.stdout); time.sleep(0.02)\\ntime.sleep(3600)"]
    startsecs = 0
    autorestart = "never"
"""  # noqa: E501


def test_logs_all_merges_every_app_by_time(wharf: Wharf):
    wharf.write_config(TWO_WRITERS)
    wharf.up()
    logs = wharf.root / ".wharf" / "logs"
    files = [logs / f"{app}.{stream}.log" for app in "ab" for stream in ("out", "err")]

    def written() -> list[str]:
        return [line for f in files if f.exists() for line in f.read_text().splitlines()]

    wait_until(lambda: len(written()) == 10, message="both apps' ten lines")
    result = wharf.run("logs", "all", "-n", "6")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == sorted(written())[-6:]
    everything = wharf.run("logs", "all", "-n", "100").stdout.splitlines()
    assert everything == sorted(written())
    assert any(" b.0 | b2" in line for line in everything)  # stderr is in it too


def test_logs_all_follows_every_app(wharf: Wharf):
    ticker = """
        [apps.{name}]
        command = ["{{py}}", "-u", "-c", "import time\\nwhile True: print('tick {name}'); time.sleep(0.05)"]
        startsecs = 0
    """  # noqa: E501
    wharf.write_config(ticker.format(name="a") + ticker.format(name="b"))
    wharf.up()
    follower = subprocess.Popen([PY, "-m", "wharf", "-c", str(wharf.config), "logs", "all",
                                 "-f", "-n", "0"], stdout=subprocess.PIPE)
    assert follower.stdout is not None
    received = b""
    try:
        deadline = time.monotonic() + 20
        while not (b"a.0 | tick a" in received and b"b.0 | tick b" in received) \
                and time.monotonic() < deadline and follower.poll() is None:
            if select.select([follower.stdout], [], [], 1)[0]:
                received += os.read(follower.stdout.fileno(), 1 << 16)
    finally:
        follower.kill()
        follower.wait(timeout=10)
    assert b"a.0 | tick a" in received and b"b.0 | tick b" in received, received
