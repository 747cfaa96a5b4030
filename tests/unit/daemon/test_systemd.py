"""The systemd link without sockets: the status line, and what is read from the environment."""

from __future__ import annotations

import os

from wharf.daemon.sdnotify import Notifier
from wharf.daemon.systemd import status_line


def row(app: str, state: str) -> dict[str, object]:
    return {"kind": "instance", "app": app, "state": state}


def test_the_status_line_counts_apps_and_running_instances_and_leaves_out_the_proxy():
    rows = [row("web", "RUNNING"), row("web", "RUNNING"), row("worker", "STARTING"),
            row("wharf-proxy", "RUNNING"), {"kind": "backend", "app": "web"}]
    assert status_line(rows, "wharf-proxy") == "2 apps, 2 instances running"


def test_the_status_line_says_how_many_failed():
    rows = [row("web", "RUNNING"), row("web", "FATAL"), row("cron", "BACKOFF")]
    assert status_line(rows, "wharf-proxy") == "2 apps, 1 instance running, 2 failed"


def test_the_notify_variables_are_taken_out_of_the_environment():
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid()),
           "HOME": "/root"}
    notifier = Notifier.from_environment(env)
    assert env == {"HOME": "/root"}
    assert notifier.address == "@x" and notifier.watchdog_interval == 2.0
    notifier.close()


def test_a_watchdog_meant_for_another_process_is_ignored():
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "4000000",
                                          "WATCHDOG_PID": "1"})
    assert notifier.enabled and notifier.watchdog_interval is None
    notifier.close()


def test_without_notify_socket_nothing_is_sent():
    notifier = Notifier.from_environment({"WATCHDOG_USEC": "4000000"})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.send(READY=1) is False
