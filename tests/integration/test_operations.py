"""Operations Supervisor and PM2 users expect, on a real daemon: depends_on start and stop
order, watch rolls (debounced, no request lost), cron_restart through the clock hook."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration.conftest import PY, Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import probe
from tests.integration.test_balancing import under_load
from wharf.daemon.triggers import CLOCK_OFFSET_ENV

# A job that runs until the test lets it finish (no timing in the test).
GATED_JOB = "sh -c 'while [ ! -e go ]; do sleep 0.02; done'"
# A service that writes its name to ./stops when it gets SIGTERM.
RECORDS_STOP = ('["sh", "-c", "trap \'echo $WHARF_APP >> stops; exit 0\' TERM; '
                'while :; do sleep 0.05; done"]')


def test_an_app_starts_once_its_job_is_done_and_its_service_runs(wharf: Wharf):
    wharf.write_config(f"""
        [apps.db-migrate]
        command = "{GATED_JOB}"
        autorestart = "on-failure"
        startsecs = 0
        [apps.redis]
        command = "sleep 100"
        startsecs = "0.2s"
        [apps.web]
        command = "sleep 100"
        startsecs = "0.2s"
        depends_on = ["db-migrate", "redis"]
    """)
    wharf.up()
    row = wait_until(lambda: (r := wharf.row("web"))["reason"].startswith("waiting") and
                     wharf.row("redis")["state"] == "RUNNING" and r, message="web waiting")
    assert row["state"] == "STOPPED"  # type: ignore[index]
    assert "waiting for db-migrate (RUNNING, a job: counts once it exits)" in \
        wharf.run("status").stdout
    (wharf.root / "go").touch()
    wharf.wait_state("web", "RUNNING")
    assert wharf.row("db-migrate")["state"] == "EXITED"


def test_a_fatal_dependency_keeps_its_dependents_waiting_and_says_so(wharf: Wharf):
    wharf.write_config("""
        [apps.db-migrate]
        command = "sh -c 'exit 3'"
        autorestart = "on-failure"
        startretries = 0
        [apps.web]
        command = "sleep 100"
        depends_on = ["db-migrate"]
    """)
    wharf.up()
    wharf.wait_state("db-migrate", "FATAL")
    wait_until(lambda: "waiting for db-migrate (FATAL)" in wharf.run("status").stdout,
               message="the reason in status")
    started = wharf.run("start", "web")  # starts db-migrate again, which fails again
    assert started.returncode == 1
    assert "web: waiting for db-migrate (FATAL)" in started.stderr
    assert wharf.row("web")["state"] == "STOPPED"


def test_start_of_a_dependent_starts_its_stopped_dependency_first(wharf: Wharf):
    wharf.write_config("""
        [apps.redis]
        command = "sleep 100"
        startsecs = "0.2s"
        [apps.web]
        command = "sleep 100"
        startsecs = "0.2s"
        depends_on = ["redis"]
    """)
    wharf.up()
    wharf.wait_state("web", "RUNNING")
    assert wharf.run("stop", "all").returncode == 0
    started = wharf.run("start", "web")
    assert started.returncode == 0, started.stderr
    assert wharf.row("redis")["state"] == wharf.row("web")["state"] == "RUNNING"


@pytest.mark.parametrize("how", ["down", "stop all"])
def test_dependents_stop_before_what_they_depend_on(wharf: Wharf, how: str):
    wharf.write_config(f"""
        [apps.db]
        command = {RECORDS_STOP}
        startsecs = "0.2s"
        [apps.api]
        command = {RECORDS_STOP}
        startsecs = "0.2s"
        depends_on = ["db"]
        [apps.web]
        command = {RECORDS_STOP}
        startsecs = "0.2s"
        depends_on = ["api"]
    """)
    wharf.up()
    wharf.wait_state("web", "RUNNING")
    wharf.status()
    done = wharf.run(*how.split())
    assert done.returncode == 0, done.stderr
    if how == "down":
        wharf.daemon.wait(timeout=20)  # type: ignore[union-attr]
    assert (wharf.root / "stops").read_text().split() == ["web", "api", "db"]


def test_a_dependency_cycle_is_a_config_error_naming_it(wharf: Wharf):
    wharf.write_config("""
        [apps.a]
        command = "true"
        depends_on = ["b"]
        [apps.b]
        command = "true"
        depends_on = ["a"]
    """)
    checked = wharf.run("check")
    assert checked.returncode == 2
    assert "apps.a.depends_on: dependency cycle: a -> b -> a" in checked.stderr


def _watched_web(wharf: Wharf, port: int) -> None:
    (wharf.root / "src").mkdir()
    (wharf.root / "src" / "app.py").write_text("v = 1\n")
    wharf.write_config(f"""
        [proxy]
        listen = ["127.0.0.1:{port}"]
        [apps.web]
        command = "{{py}} {{apps}}/httpapp.py"
        instances = 2
        startsecs = "0.3s"
        drain_timeout = "5s"
        watch = ["src"]
        watch_ignore = ["*.tmp"]
        watch_delay = "300ms"
        [[routes]]
        app = "web"
    """)
    wharf.up()
    wharf.wait_ready("web", 2)
    wait_until(lambda: b"instance=" in probe(port), message="the proxy")


def _rolls(wharf: Wharf) -> int:
    return wharf.daemon_log.read_text().count("changed: restarting")


def _rolled(wharf: Wharf, before: set[int]) -> bool:
    rows = wharf.instances("web")
    pids = {r["pid"] for r in rows}
    return len(rows) == 2 and all(r["ready"] for r in rows) and not before & pids


def test_a_change_under_a_watched_dir_rolls_the_app_once_failing_no_request(wharf: Wharf):
    port = free_port()
    _watched_web(wharf, port)
    before = {r["pid"] for r in wharf.instances("web")}
    (wharf.root / "src" / "ignored.tmp").write_text("x")  # ignored: no roll
    with under_load(port, post=False) as results:
        (wharf.root / "src" / "app.py").write_text("v = 2\n")
        wait_until(lambda: _rolled(wharf, before), 30, "a roll")
    assert results and set(results) == {200}, {s: results.count(s) for s in set(results)}
    assert _rolls(wharf) == 1
    assert "src/app.py changed: restarting" in wharf.daemon_log.read_text()


def test_a_burst_of_changes_gives_one_roll(wharf: Wharf):
    port = free_port()
    _watched_web(wharf, port)
    before = {r["pid"] for r in wharf.instances("web")}
    for i in range(20):
        (wharf.root / "src" / f"m{i}.py").write_text(f"x = {i}\n")
    wait_until(lambda: _rolled(wharf, before), 30, "a roll")
    after = {r["pid"] for r in wharf.instances("web")}
    # A marker change after the roll: once its roll is done, no other roll came between.
    (wharf.root / "src" / "marker.py").write_text("m = 1\n")
    wait_until(lambda: _rolled(wharf, after), 30, "the marker's roll")
    log = wharf.daemon_log.read_text()
    assert _rolls(wharf) == 2, log
    assert "(+19 more) changed: restarting" in log


def test_cron_restart_restarts_the_app_at_its_time(wharf: Wharf, monkeypatch):
    # The hidden clock hook: the daemon's cron clock reads 3 s before a minute starts.
    now = time.time()
    monkeypatch.setenv(CLOCK_OFFSET_ENV, str(60 - now % 60 - 3))
    wharf.write_config("""
        [apps.job]
        command = "sleep 100"
        startsecs = "0.2s"
        cron_restart = "* * * * *"
    """)
    wharf.up()
    log = wharf.daemon_log
    wait_until(lambda: 'cron_restart "* * * * *": restarting' in log.read_text(), 20,
               "the cron restart")
    row = wharf.wait_state("job", "RUNNING")
    spawned = [line.rsplit(" ", 1)[1] for line in log.read_text().splitlines()
               if "-> STARTING pid" in line]
    assert len(spawned) == 2 and str(row["pid"]) == spawned[1]


def test_log_files_rotate_compressed_within_their_total(wharf: Wharf):
    wharf.write_config(f"""
        [apps.chatty]
        command = "{PY} -c 'import sys; [print(\\"x\\" * 99) for _ in range(3000)]; \
sys.stdout.flush(); import time; time.sleep(100)'"
        log_max_size = "10KB"
        log_backups = 100
        log_max_total = "2KB"
        log_compress = true
    """)
    wharf.up()
    logs = wharf.root / ".wharf" / "logs"

    def rotated() -> list[Path]:
        return sorted(logs.glob("chatty.out.log.*.gz"))

    # The oldest backup is deleted after the newest is compressed: between the two the total
    # may be over the limit for a moment, so wait for it to come back under.
    wait_until(lambda: len(rotated()) >= 2 and not list(logs.glob("*.rotated"))
               and sum(p.stat().st_size for p in rotated()) <= 2000, 20,
               "compressed backups within log_max_total")
