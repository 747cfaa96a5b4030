"""A reload that moves routes keeps each service's health: services are named, not numbered."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.test_balancing import under_load

CONFIG = """
    [proxy]
    listen = ["127.0.0.1:{port}"]
    [apps.web]
    command = "{{py}} {{apps}}/httpapp.py"
    instances = 2
    startsecs = "0.2s"
    {redirect}
    [[routes]]
    app = "web"
    health = {{ path = "/", interval = "300ms", rise = 3, fall = 2 }}
"""
REDIRECT = """
    [[routes]]
    path = "/old"
    redirect = "/new"
"""


def all_up(wharf: Wharf) -> bool:
    rows = wharf.backends()
    return len(rows) == 2 and all(r["health"] == "up" for r in rows)


def test_inserting_a_route_above_a_health_checked_app_fails_no_request(tmp_path: Path):
    port = free_port()
    wharf = Wharf(tmp_path)
    wharf.write_config(CONFIG.format(port=port, redirect=""))
    try:
        wharf.up()
        wait_until(lambda: all_up(wharf), message="both instances up in the health checks")
        with under_load(port, clients=2, post=False) as results:
            wait_until(lambda: len(results) > 20, message="requests before the reload")
            wharf.write_config(CONFIG.format(port=port, redirect=REDIRECT))
            result = wharf.run("reload")
            assert result.returncode == 0, result.stderr
            # Had the health checks started over, the backends would be down for at least
            # rise x interval: look at them, then let more requests through.
            assert all_up(wharf)
            seen = len(results)
            wait_until(lambda: len(results) > seen + 100, message="requests after the reload")
        assert results and set(results) == {200}, sorted(set(results))
        assert {r["service"] for r in wharf.backends()} == {"app:web"}
    finally:
        wharf.close()
