"""`wharf signal APP SIG` with real processes that act on the signal."""

from __future__ import annotations

from tests.integration.conftest import Wharf, wait_until

CONFIG = """
    [apps.web]
    command = "{py} {apps}/hupper.py"
    instances = 2
    startsecs = 0
    [apps.other]
    command = "{py} {apps}/hupper.py"
    startsecs = 0
"""


def count(wharf: Wharf, app: str, word: str) -> int:
    log = wharf.root / ".wharf" / "logs" / f"{app}.out.log"
    return log.read_text().count(f"| {word}\n") if log.exists() else 0


def started(wharf: Wharf) -> list[int]:
    wharf.write_config(CONFIG)
    wharf.up()
    wait_until(lambda: count(wharf, "web", "ready") == 2 and count(wharf, "other", "ready") == 1,
               message="every instance to set its handlers")
    return [r["pid"] for r in wharf.status()]


def test_signal_reaches_every_instance_of_the_app_and_no_other(wharf: Wharf):
    pids = started(wharf)
    result = wharf.run("signal", "web", "HUP")
    assert result.returncode == 0, result.stderr
    web = [r for r in wharf.status() if r["app"] == "web"]
    for r in web:
        assert f"web.{r['instance']}: SIGHUP sent to pid {r['pid']}" in result.stdout
    assert "other" not in result.stdout
    wait_until(lambda: count(wharf, "web", "reloaded") == 2, message="both instances to reload")
    assert count(wharf, "other", "reloaded") == 0
    assert [r["pid"] for r in wharf.status()] == pids  # signalled, not restarted


def test_signal_all_by_number_and_by_sig_name(wharf: Wharf):
    started(wharf)
    assert wharf.run("signal", "all", "1").returncode == 0
    wait_until(lambda: count(wharf, "web", "reloaded") == 2
               and count(wharf, "other", "reloaded") == 1, message="SIGHUP by number")
    assert wharf.run("signal", "other", "SIGUSR1").returncode == 0
    wait_until(lambda: count(wharf, "other", "usr1") == 1, message="SIGUSR1 by its full name")
    assert count(wharf, "web", "usr1") == 0


def test_an_unknown_signal_or_app_is_a_usage_error(wharf: Wharf):
    pids = started(wharf)
    bad_signal = wharf.run("signal", "web", "NOPE")
    assert bad_signal.returncode == 2
    assert "unknown signal 'NOPE'" in bad_signal.stderr and "HUP" in bad_signal.stderr
    bad_app = wharf.run("signal", "nope", "HUP")
    assert bad_app.returncode == 2 and "no app named 'nope'" in bad_app.stderr
    assert [r["pid"] for r in wharf.status()] == pids


def test_signalling_a_stopped_app_says_so(wharf: Wharf):
    started(wharf)
    assert wharf.run("stop", "other").returncode == 0
    result = wharf.run("signal", "other", "HUP")
    assert result.returncode == 1 and "nothing to signal" in result.stderr
