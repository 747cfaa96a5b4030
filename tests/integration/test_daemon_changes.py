"""Changes to running apps: reload converges to the file, restart and rename fail no request,
a shutdown reaches every process, a max_memory restart drains first."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.integration.conftest import PY, Wharf, pid_alive, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import get, probe
from tests.integration.test_balancing import _web, under_load


@contextlib.contextmanager
def serving(tmp_path: Path, extra: str = "") -> Iterator[tuple[Wharf, int]]:
    """A daemon whose 4 routed instances of `web` take traffic through the proxy; (wharf,
    proxy port). Stopped, with every process it started, after the block."""
    port = free_port()
    wharf = _web(tmp_path, port, extra)
    try:
        wharf.up()
        wharf.wait_ready("web", 4)
        wait_until(lambda: b"instance=" in probe(port), message="the proxy")
        yield wharf, port
    finally:
        wharf.close()


def test_reload_scales_an_app_back_to_the_file(tmp_path):
    with serving(tmp_path) as (wharf, _):
        assert wharf.run("scale", "web", "2").returncode == 0
        reloaded = wharf.run("reload")
        assert reloaded.returncode == 0 and "scaled: web" in reloaded.stdout, reloaded.stdout
        wharf.wait_ready("web", 4)


def test_status_says_when_the_running_count_differs_from_the_file(tmp_path):
    with serving(tmp_path) as (wharf, _):
        assert wharf.run("scale", "web", "2").returncode == 0
        assert [r["configured_instances"] for r in wharf.instances("web")] == [4, 4]
        assert "web: 2 instances run, the config file says 4" in wharf.run("status").stdout


def test_restart_of_a_routed_app_fails_no_request(tmp_path):
    with serving(tmp_path) as (wharf, port):
        before = {r["pid"] for r in wharf.instances("web")}
        with under_load(port) as results:
            restarted = wharf.run("restart", "web")
        assert restarted.returncode == 0, restarted.stderr
        rows = wharf.instances("web")
        assert all(r["ready"] for r in rows) and not before & {r["pid"] for r in rows}
        assert results and set(results) == {200}, {s: results.count(s) for s in set(results)}


def test_start_returns_once_the_instances_take_traffic(tmp_path):
    with serving(tmp_path, 'env = { LISTEN_AFTER = "0.7" }') as (wharf, _):
        assert wharf.run("stop", "web").returncode == 0
        started = wharf.run("start", "web")
        assert started.returncode == 0, started.stderr
        assert all(r["ready"] for r in wharf.instances("web"))


def test_renaming_a_routed_app_fails_no_request(tmp_path):
    with serving(tmp_path) as (wharf, port):
        text = wharf.config.read_text()
        wharf.config.write_text(text.replace("[apps.web]", "[apps.www]")
                                .replace('app = "web"', 'app = "www"'))
        with under_load(port) as results:
            reloaded = wharf.run("reload")
        assert reloaded.returncode == 0, reloaded.stdout
        assert "added: www" in reloaded.stdout and "removed: web" in reloaded.stdout
        assert results and set(results) == {200}, {s: results.count(s) for s in set(results)}
        assert [r["app"] for r in wharf.status()] == ["www"] * 4 + ["wharf-proxy"]


def test_a_shutdown_during_a_roll_stops_the_instances_it_replaced(wharf: Wharf):
    wharf.write_config("""
        [apps.stub]
        command = "{py} {apps}/stubborn.py"
        startsecs = "0.2s"
        stop_timeout = "60s"
    """)
    wharf.up()
    old = wharf.wait_state("stub", "RUNNING")["pid"]
    roll = subprocess.Popen([PY, "-m", "wharf", "-c", str(wharf.config), "reload", "stub"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: wharf.row("stub")["pid"] not in (None, old), message="the new one")
        assert pid_alive(old)  # it ignores SIGTERM: the roll waits for it to exit
        assert wharf.daemon is not None
        wharf.daemon.send_signal(signal.SIGTERM)
        wait_until(lambda: "stopping every app" in wharf.daemon_log.read_text())
        wharf.daemon.send_signal(signal.SIGTERM)  # the second one kills every process now
        wharf.daemon.wait(timeout=20)
        wait_until(lambda: not pid_alive(old), message="the replaced instance to be gone")
    finally:
        roll.kill()
        roll.wait()


def test_a_max_memory_restart_lets_requests_in_flight_finish(tmp_path):
    port = free_port()
    wharf = _web(tmp_path, port, 'max_memory = "60MB"')
    wharf.config.write_text(wharf.config.read_text().replace("instances = 4", "instances = 1"))
    try:
        wharf.up()
        wharf.wait_ready("web", 1)
        wait_until(lambda: b"instance=" in probe(port), message="the proxy")
        slow: list[int] = []
        thread = threading.Thread(target=lambda: slow.append(get(port, "/slow?sleep=4").status))
        thread.start()
        wait_until(lambda: any(b["inflight"] for b in wharf.backends()), message="in flight")
        assert get(port, "/grow?hoard=100").status == 200
        wait_until(lambda: wharf.row("web")["restarts"] == 1, timeout=20, message="a restart")
        thread.join(timeout=20)
        assert slow == [200]
        assert "over max_memory" in wharf.row("web")["last_restart"]
    finally:
        wharf.close()


def test_stop_during_a_roll_waits_for_its_end_and_leaves_nothing_running(tmp_path):
    wharf = _web(tmp_path, free_port())
    wharf.config.write_text(wharf.config.read_text().replace("instances = 4", "instances = 2"))
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        wharf.config.write_text(wharf.config.read_text().replace(
            'ready_timeout = "5s"', 'ready_timeout = "5s"\nenv = { LISTEN_AFTER = "1" }'))
        roll = subprocess.Popen([PY, "-m", "wharf", "-c", str(wharf.config), "reload"],
                                stdout=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: wharf.daemon_log.read_text().count("web.0: STOPPED -> STARTING")
                       == 2, message="the roll to start its first new instance")
            stopped = wharf.run("stop", "web")
            assert stopped.returncode == 0, stopped.stderr
        finally:
            rolled, _ = roll.communicate(timeout=60)
        assert roll.returncode == 0 and "rolled: web" in rolled, rolled  # not cut short
        assert [r["state"] for r in wharf.instances("web")] == ["STOPPED", "STOPPED"]
    finally:
        wharf.close()


def test_a_failed_batch_drains_the_replacements_that_already_took_traffic(tmp_path):
    """max_surge = 2: the first new instance is ready and in the pool while the second never
    gets ready; the roll gives up, and the first one's requests in flight still finish."""
    import json
    import re
    from concurrent.futures import ThreadPoolExecutor

    from tests.integration.proxyutil import request

    port = free_port()
    wharf = _web(tmp_path, port, "max_surge = 2")
    text = wharf.config.read_text().replace("instances = 4", "instances = 2").replace(
        'ready_timeout = "5s"', 'ready_timeout = "3s"')
    wharf.config.write_text(text)
    line = re.search(r'^\s*command = "(.*)"$', text, re.MULTILINE)
    assert line is not None
    second_hangs = json.dumps(["sh", "-c", f'test "$WHARF_INSTANCE" = 1 && sleep 3600; '
                                           f'exec {line[1]}'])
    try:
        wharf.up()
        wharf.wait_ready("web", 2)
        old_ports = {r["port"] for r in wharf.instances("web")}
        wharf.config.write_text(text.replace(line[0], f"\ncommand = {second_hangs}"))
        roll = subprocess.Popen([PY, "-m", "wharf", "-c", str(wharf.config), "reload"],
                                stdout=subprocess.PIPE, text=True)
        def new_port_answers() -> bool:
            body = probe(port)
            return b"port=" in body and not any(f"port={p} ".encode() in body for p in old_ports)

        wait_until(new_port_answers, message="the first new instance in the pool")
        slow = b"POST /slow?sleep=3 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n" \
               b"Connection: close\r\n\r\n"
        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: request(port, slow, timeout=15), range(6)))
        out, _ = roll.communicate(timeout=60)
        assert "did not become ready" in out, out
        served_by_new = [a for a in answers if a.status == 200 and not any(
            f"port={p} ".encode() in a.body for p in old_ports)]
        assert [a.status for a in answers] == [200] * 6
        assert served_by_new, "no request reached the replacement that was discarded"
    finally:
        wharf.close()
