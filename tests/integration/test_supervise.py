"""The supervisor with real processes: start, crash, restart, stop, kill, FATAL, memory."""

from __future__ import annotations

import os
import pwd
import signal
import socket
import time

import psutil
import pytest

from tests.integration.conftest import Wharf, pid_alive, wait_until


def test_instances_get_their_identity_and_a_unique_port(wharf: Wharf):
    wharf.write_config("""
        [apps.web]
        command = "{py} {apps}/sleeper.py --port={port} --instance={instance}"
        instances = 3
        startsecs = "0.2s"
    """)
    wharf.up()
    rows = [wharf.wait_state("web", "RUNNING", i) for i in range(3)]
    ports = {r["port"] for r in rows}
    assert len(ports) == 3
    log = wharf.root / ".wharf" / "logs" / "web.out.log"
    wait_until(lambda: log.exists() and log.read_text().count("ready") == 3)
    text = log.read_text()
    for r in rows:
        assert (f"web.{r['instance']} | ready app=web instance={r['instance']} port={r['port']} "
                f"argv=['--port={r['port']}', '--instance={r['instance']}']") in text


def test_status_json_has_the_stable_fields(wharf: Wharf):
    wharf.write_config("""
        [apps.a]
        command = "{py} {apps}/sleeper.py"
        startsecs = 0
    """)
    wharf.up()
    row = wharf.wait_state("a", "RUNNING")
    for key in ("app", "instance", "pid", "state", "restarts", "uptime_s", "exit_code",
                "cpu_percent", "rss_bytes"):
        assert key in row
    assert row["restarts"] == 0 and row["exit_code"] is None
    # A Python interpreter takes several MB once loaded; the sampler runs every 2 s.
    wait_until(lambda: (wharf.row("a")["rss_bytes"] or 0) > 4_000_000,
               message="an RSS sample of the loaded app")


def test_fixed_port_gives_port_plus_instance(wharf: Wharf):
    wharf.write_config("""
        [apps.a]
        command = "{py} {apps}/sleeper.py"
        instances = 2
        port = 23456
        startsecs = 0
    """)
    wharf.up()
    assert [r["port"] for r in wharf.status()] == [23456, 23457]


def test_a_killed_process_is_replaced_at_once(wharf: Wharf):
    wharf.write_config("""
        [apps.a]
        command = "sleep 1000"
        startsecs = 0
    """)
    wharf.up()
    old = wharf.wait_state("a", "RUNNING")["pid"]
    os.kill(old, signal.SIGKILL)
    row = wait_until(lambda: (r := wharf.row("a"))["pid"] not in (None, old)
                     and r["state"] == "RUNNING" and r)
    assert row["restarts"] == 1
    assert row["exit_signal"] == signal.SIGKILL
    assert not pid_alive(old)
    assert "a.0: RUNNING -> EXITED (killed by SIGKILL)" in wharf.daemon_log.read_text()


def test_missing_command_ends_fatal_and_other_apps_keep_running(wharf: Wharf):
    wharf.write_config("""
        [apps.broken]
        command = "/nonexistent/program --flag"
        startretries = 2
        backoff = "50ms"
        [apps.good]
        command = "sleep 1000"
        startsecs = 0
    """)
    wharf.up()
    row = wharf.wait_state("broken", "FATAL")
    assert "command not found: /nonexistent/program" in row["reason"]
    assert "gave up after 3 attempts" in row["reason"]
    assert wharf.row("good")["state"] == "RUNNING"
    table = wharf.run("status").stdout
    assert "FATAL" in table and "command not found" in table


def test_an_app_that_exits_at_once_backs_off_then_is_fatal(wharf: Wharf):
    wharf.write_config("""
        [apps.crash]
        command = "{py} -c 'import sys; sys.exit(3)'"
        startsecs = "1s"
        startretries = 2
        backoff = "50ms"
    """)
    wharf.up()
    row = wharf.wait_state("crash", "FATAL", timeout=20)
    assert "exited too quickly (exit status 3)" in row["reason"]
    assert row["exit_code"] == 3
    assert wharf.daemon is not None and wharf.daemon.poll() is None
    log = wharf.daemon_log.read_text()
    assert "crash.0: STARTING -> BACKOFF" in log and "next try in" in log


def test_autorestart_never_leaves_the_app_exited(wharf: Wharf):
    wharf.write_config("""
        [apps.once]
        command = "{py} -c 'import time; time.sleep(0.3)'"
        startsecs = "0.1s"
        autorestart = "never"
    """)
    wharf.up()
    row = wharf.wait_state("once", "EXITED")
    assert row["exit_code"] == 0 and row["restarts"] == 0


def test_a_one_shot_job_that_finishes_within_startsecs_runs_once(wharf: Wharf):
    runs = wharf.root / "runs.txt"
    wharf.write_config(f"""
        [apps.migrate]
        command = ["/bin/sh", "-c", "echo ran >> {runs}"]
        startsecs = "1s"
        autorestart = "never"
        backoff = "10ms"
    """)
    wharf.up()
    row = wharf.wait_state("migrate", "EXITED")
    assert row["exit_code"] == 0 and row["restarts"] == 0
    assert runs.read_text() == "ran\n"
    assert "migrate.0: STARTING -> EXITED (exit status 0)" in wharf.daemon_log.read_text()


def test_a_fixed_port_held_by_another_process_is_fatal_at_once(wharf: Wharf):
    """Spawning would only crash again and again: the instance fails with the holder's name."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        wharf.write_config(f"""
            [apps.web]
            command = "{{py}} {{apps}}/httpapp.py"
            port = {port}
            startsecs = 0
            backoff = "10ms"
        """)
        wharf.up()
        row = wharf.wait_state("web", "FATAL")
        me = psutil.Process().name()
        assert row["reason"] == f"port {port} is already in use by pid {os.getpid()} ({me})"
        assert row["pid"] is None and row["restarts"] == 0 and row["exit_code"] is None
        log = wharf.daemon_log.read_text()
        assert "BACKOFF" not in log and f"web.0: STARTING -> FATAL (port {port}" in log
        assert f"port {port} is already in use" in wharf.run("status").stdout
    started = wharf.run("start", "web")  # the port is free now
    assert started.returncode == 0, started.stdout + started.stderr
    assert wharf.row("web")["state"] == "RUNNING"


def test_up_detached_exits_1_naming_the_holder_of_a_fixed_port(wharf: Wharf):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        wharf.write_config(f"""
            [apps.web]
            command = "sleep 1000"
            port = {port}
        """)
        result = wharf.run("up", "-d")
        daemon_pid = int((wharf.root / ".wharf" / "wharf.pid").read_text())
        try:
            assert result.returncode == 1
            assert f"web.0: FATAL (port {port} is already in use by pid {os.getpid()}" \
                in result.stderr
        finally:
            wharf.run("down")
            if pid_alive(daemon_pid):
                os.kill(daemon_pid, signal.SIGKILL)


def test_stop_kills_the_whole_group_after_stop_timeout(wharf: Wharf):
    wharf.write_config("""
        [apps.stubborn]
        command = "{py} {apps}/stubborn.py"
        startsecs = 0
        stop_timeout = "0.5s"
    """)
    wharf.up()
    pid = wharf.wait_state("stubborn", "RUNNING")["pid"]
    log = wharf.root / ".wharf" / "logs" / "stubborn.out.log"
    text = wait_until(lambda: log.exists() and "grandchild=" in log.read_text() and
                      log.read_text())
    grandchild = int(str(text).split("grandchild=")[1].split()[0])
    started = time.monotonic()
    result = wharf.run("stop", "stubborn")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 0.5  # it waited for stop_timeout before SIGKILL
    row = wharf.row("stubborn")
    assert row["state"] == "STOPPED" and row["exit_signal"] == signal.SIGKILL
    wait_until(lambda: not pid_alive(pid) and not pid_alive(grandchild),
               message="the app and its grandchild to be gone")


def test_scaling_past_the_port_range_adds_no_instance(wharf: Wharf):
    first = 30000 + os.getpid() % 2000
    wharf.write_config(f"""
        [daemon]
        port_range = "{first}-{first + 2}"
        [apps.a]
        command = "{{py}} {{apps}}/sleeper.py"
        startsecs = 0
    """)
    wharf.up()
    wharf.wait_state("a", "RUNNING")
    scaled = wharf.run("scale", "a", "4")
    assert scaled.returncode != 0 and "no free port left" in scaled.stderr, scaled.stderr
    assert [r["state"] for r in wharf.status() if r["app"] == "a"] == ["RUNNING"]
    assert wharf.run("scale", "a", "3").returncode == 0
    assert [r["state"] for r in wharf.status() if r["app"] == "a"] == ["RUNNING"] * 3


def test_a_crash_takes_the_leftover_group_with_it(wharf: Wharf):
    wharf.write_config("""
        [apps.stubborn]
        command = "{py} {apps}/stubborn.py"
        startsecs = 0
        stop_timeout = "1s"  # it ignores SIGTERM: the teardown need not wait the default 10 s
    """)
    wharf.up()
    pid = wharf.wait_state("stubborn", "RUNNING")["pid"]
    log = wharf.root / ".wharf" / "logs" / "stubborn.out.log"
    text = wait_until(lambda: log.exists() and "grandchild=" in log.read_text() and
                      log.read_text())
    grandchild = int(str(text).split("grandchild=")[1].split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(grandchild), message="the orphaned grandchild to be killed")


def test_start_stop_restart_commands(wharf: Wharf):
    wharf.write_config("""
        [apps.a]
        command = "{py} {apps}/sleeper.py"
        instances = 2
        startsecs = "0.2s"
    """)
    wharf.up()
    wharf.wait_state("a", "RUNNING", 1)
    first = [r["pid"] for r in wharf.status()]
    stopped = wharf.run("stop", "a")
    assert stopped.returncode == 0 and stopped.stdout.count("STOPPED") == 2
    assert not any(pid_alive(p) for p in first)
    started = wharf.run("start", "all")
    assert started.returncode == 0, started.stdout + started.stderr
    assert started.stdout.count("RUNNING") == 2
    second = [r["pid"] for r in wharf.status()]
    restarted = wharf.run("restart", "a")
    assert restarted.returncode == 0
    third = [r["pid"] for r in wharf.status()]
    assert set(first).isdisjoint(second) and set(second).isdisjoint(third)
    assert all(r["restarts"] == 2 for r in wharf.status())


def test_start_of_a_failing_app_exits_non_zero(wharf: Wharf):
    wharf.write_config("""
        [apps.bad]
        command = "{py} -c 'raise SystemExit(1)'"
        startsecs = "0.5s"
        startretries = 0
    """)
    wharf.up()
    wharf.wait_state("bad", "FATAL")
    result = wharf.run("start", "bad")
    assert result.returncode == 1
    assert "bad.0: FATAL (exited too quickly" in result.stderr


def test_unknown_app_is_a_usage_error(wharf: Wharf):
    wharf.write_config("""
        [apps.a]
        command = "sleep 1000"
    """)
    wharf.up()
    result = wharf.run("restart", "nope")
    assert result.returncode == 2
    assert "no app named 'nope'" in result.stderr and "apps: a" in result.stderr


def test_max_memory_restarts_the_app(wharf: Wharf):
    wharf.write_config("""
        [apps.hog]
        command = "{py} {apps}/memhog.py"
        env = { MB = "80" }
        startsecs = 0
        max_memory = "40MB"
    """)
    wharf.up()
    wait_until(lambda: wharf.row("hog")["restarts"] >= 1, timeout=15,
               message="a restart for memory")
    assert "max_memory" in wharf.daemon_log.read_text()
    assert "over max_memory 40000000" in wharf.row("hog")["last_restart"]
    assert "hog.0: last restarted: RSS " in wharf.run("status").stdout


def test_the_memory_column_counts_the_children_of_the_app(wharf: Wharf):
    """Three forked workers of 40 MB each: the main process alone is a few MB."""
    wharf.write_config("""
        [apps.pool]
        command = "{py} {apps}/forkhog.py"
        env = { CHILDREN = "3", MB = "40" }
        startsecs = 0
    """)
    wharf.up()
    wharf.wait_state("pool", "RUNNING")
    wait_until(lambda: (wharf.row("pool")["rss_bytes"] or 0) > 3 * 40 * 1024 * 1024,
               timeout=15, message="an RSS sample with the children's memory")


def test_max_memory_counts_the_children_of_the_app(wharf: Wharf):
    wharf.write_config("""
        [apps.pool]
        command = "{py} {apps}/forkhog.py"
        env = { CHILDREN = "3", MB = "40" }
        startsecs = 0
        max_memory = "80MB"
    """)
    wharf.up()
    wait_until(lambda: wharf.row("pool")["restarts"] >= 1, timeout=15,
               message="a restart for the tree's memory")
    assert "over max_memory 80000000" in wharf.row("pool")["last_restart"]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_user_drops_privileges(wharf: Wharf):
    wharf.write_config("""
        [apps.a]
        command = ["/bin/sh", "-c", "echo uid=$(id -u) home=$HOME; exec sleep 1000"]
        cwd = "/"
        user = "nobody"
        startsecs = 0
    """)
    wharf.up()
    wharf.wait_state("a", "RUNNING")
    log = wharf.root / ".wharf" / "logs" / "a.out.log"
    wait_until(lambda: log.exists() and "uid=" in log.read_text())
    nobody = pwd.getpwnam("nobody")
    assert f"uid={nobody.pw_uid} home={nobody.pw_dir}" in log.read_text()


def test_the_daemon_lifts_a_low_open_files_limit(wharf: Wharf):
    """40 instances hold 120 pipes and pidfds: more than a soft limit of 64 allows."""
    import resource

    wharf.write_config("""
        [apps.many]
        command = "sleep 1000"
        instances = 40
        startsecs = 0
    """)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wharf.up(preexec=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard)))
    wait_until(lambda: [r["state"] for r in wharf.status()] == ["RUNNING"] * 40,
               message="all 40 instances running")
