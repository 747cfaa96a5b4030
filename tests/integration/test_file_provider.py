"""The file provider: routes and services in conf.d/*.toml, applied live without a reload."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from tests.integration.conftest import Wharf, wait_until
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import get
from wharf.testing.upstream import ScriptedUpstream

# Generous: a change is served within the watcher's latency (bench/discovery.py measures it,
# tens of ms); the deadline is only there to fail instead of hanging.
LIVE = 5.0

CONFIG = """
    [proxy]
    listen = ["127.0.0.1:{port}"]
    [providers.file]
    directory = "conf.d"
    [apps.web]
    command = "{{py}} {{apps}}/httpapp.py"
    startsecs = "0.2s"
    [services.api]
    servers = ["127.0.0.1:{api}"]
    [[routes]]
    path = "/"
    app = "web"
"""


@contextlib.contextmanager
def running(tmp_path: Path) -> Iterator[tuple[Wharf, int, Path, ScriptedUpstream]]:
    """A daemon with an app, a named service over `api` and an empty conf.d."""
    port = free_port()
    api = ScriptedUpstream("api")
    wharf = Wharf(tmp_path)
    confd = tmp_path / "conf.d"
    confd.mkdir()
    wharf.write_config(CONFIG.format(port=port, api=api.port))
    try:
        wharf.up()
        wharf.wait_ready("web", 1)
        yield wharf, port, confd, api
    finally:
        wharf.close()
        api.close()


def backend(port: int, path: str) -> str | None:
    return get(port, path).header("X-Backend")


def provider_rows(wharf: Wharf) -> list[dict]:
    return [r for r in wharf.status_json() if r["kind"] == "provider"]


def test_a_file_route_is_added_changed_and_removed_live(tmp_path: Path):
    one, two = ScriptedUpstream("one"), ScriptedUpstream("two")
    try:
        with running(tmp_path) as (wharf, port, confd, _):
            assert get(port, "/ext").body.startswith(b"instance=")  # the app's "/" for now
            ext = confd / "ext.toml"
            ext.write_text(f'[[routes]]\npath = "/ext"\nservers = ["127.0.0.1:{one.port}"]\n')
            wait_until(lambda: backend(port, "/ext") == "one", LIVE, "the new route")
            ext.write_text(f'[[routes]]\npath = "/ext"\nservers = ["127.0.0.1:{two.port}"]\n')
            wait_until(lambda: backend(port, "/ext") == "two", LIVE, "the edited backend")
            ext.unlink()
            wait_until(lambda: get(port, "/ext").body.startswith(b"instance="), LIVE,
                       "the route to go")
            assert provider_rows(wharf) == []
    finally:
        one.close()
        two.close()


def test_a_bad_edit_keeps_the_last_good_content_and_is_reported(tmp_path: Path):
    one = ScriptedUpstream("one")
    try:
        with running(tmp_path) as (wharf, port, confd, _):
            ext = confd / "ext.toml"
            ext.write_text(f'[[routes]]\npath = "/ext"\nservers = ["127.0.0.1:{one.port}"]\n')
            wait_until(lambda: backend(port, "/ext") == "one", LIVE, "the route")
            ext.write_text('[[routes]]\npath = "ext"\nservers = ["nowhere"]\nbalance = "x"\n')
            wait_until(lambda: provider_rows(wharf) and provider_rows(wharf)[0]["state"]
                       == "invalid", LIVE, "the refusal in status")
            (row,) = provider_rows(wharf)
            assert row["source"] == "conf.d/ext.toml" and row["routes"] == 1
            assert [p.split(":")[0] for p in row["problems"]] == [
                "routes[0].balance", "routes[0].path", "routes[0].servers[0]"]
            assert backend(port, "/ext") == "one"  # the last good content serves
            check = wharf.run("check", "--providers")
            assert check.returncode == 2
            assert "conf.d/ext.toml: routes[0].path: must be a path" in check.stderr
            assert "conf.d/ext.toml" in wharf.run("status").stdout
            ext.write_text(f'[[routes]]\npath = "/ext"\nservers = ["127.0.0.1:{one.port}"]\n'
                           '[[routes]]\npath = "/api"\nservice = "api"\n')
            wait_until(lambda: backend(port, "/api") == "api", LIVE, "the fixed file")
            assert provider_rows(wharf)[0]["state"] == "ok"
            assert wharf.run("check", "--providers").returncode == 0
    finally:
        one.close()


def test_a_file_route_reaches_an_app_and_a_service_of_wharf_toml(tmp_path: Path):
    with running(tmp_path) as (wharf, port, confd, _):
        (confd / "10-web.toml").write_text('[[routes]]\nhost = "web.test"\napp = "web"\n'
                                           '[[routes]]\npath = "/svc"\nservice = "api"\n')
        wait_until(lambda: backend(port, "/svc") == "api", LIVE, "the route to the service")
        answer = get(port, "/x", host="web.test")
        assert answer.status == 200 and answer.body.startswith(b"instance=0")
        services = {r["service"] for r in wharf.backends()}
        assert services == {"app:web", "api"}


def test_a_service_defined_twice_is_the_configs_and_the_conflict_is_shown(tmp_path: Path):
    other = ScriptedUpstream("other")
    try:
        with running(tmp_path) as (wharf, port, confd, _):
            (confd / "api.toml").write_text(
                f'[services.api]\nservers = ["127.0.0.1:{other.port}"]\n'
                '[[routes]]\npath = "/a"\nservice = "api"\n')
            wait_until(lambda: backend(port, "/a") == "api", LIVE, "the route")
            (row,) = provider_rows(wharf)
            assert row["state"] == "conflict"
            assert row["problems"] == ["services.api: ignored: the service is defined by "
                                       "wharf.toml"]
            text = json.dumps(provider_rows(wharf))
            assert "wharf.toml" in text
    finally:
        other.close()
