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


def all_up(wharf: Wharf, count: int = 2) -> bool:
    rows = wharf.backends()
    return len(rows) == count and all(r["health"] == "up" for r in rows)


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


NAMED = """
    [proxy]
    listen = ["127.0.0.1:{port}"]
    [services.api]
    servers = ["127.0.0.1:{good}", "127.0.0.1:{bad}"]
    health = {{ path = "/healthz", interval = "300ms", rise = 3, fall = 2 }}
    eject_after = 2
    ejection = "60s"
    retries = 0
    {routes}
"""


def routes(*paths: str) -> str:
    return "".join(f'\n[[routes]]\npath = "{p}"\nservice = "api"\n' if p != "/old" else
                   '\n[[routes]]\npath = "/old"\nredirect = "/new"\n' for p in paths)


def test_a_named_service_keeps_health_and_ejection_when_its_routes_move(tmp_path: Path):
    from tests.integration.proxyutil import get
    from wharf.testing.upstream import ScriptedUpstream

    good, bad = ScriptedUpstream("good"), ScriptedUpstream("bad", broken=True)
    port = free_port()
    wharf = Wharf(tmp_path)

    def write(*paths: str) -> None:
        wharf.write_config(NAMED.format(port=port, good=good.port, bad=bad.port,
                                        routes=routes(*paths)).replace("\n    ", "\n"))

    def ejected() -> set[str]:
        return {r["backend"] for r in wharf.backends() if r["ejected"]}

    write("/a", "/b")
    try:
        wharf.up()
        wait_until(lambda: all_up(wharf, 4), message="both servers up in the health checks")
        wait_until(lambda: [get(port, "/a").status for _ in range(4)] and ejected(),
                   message="the broken server ejected")
        assert ejected() == {f"127.0.0.1:{bad.port}"}
        write("/old", "/b", "/c", "/a")  # a route above, the two swapped, one more
        result = wharf.run("reload")
        assert result.returncode == 0, result.stderr
        # Health started over would be down for rise x interval, ejection gone at once.
        assert all_up(wharf, 6) and ejected() == {f"127.0.0.1:{bad.port}"}
        for path in ("/a", "/b", "/c") * 4:
            assert get(port, path).header("X-Backend") == "good"
        assert {r["service"] for r in wharf.backends()} == {"api"}
    finally:
        wharf.close()
        good.close()
        bad.close()
