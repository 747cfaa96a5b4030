"""The Docker provider against a real Docker-compatible engine (podman's API service): labelled
containers are routed through a real Wharf proxy, join and leave live."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import Wharf, wait_until
from tests.integration.podman import Podman, containers, podman  # noqa: F401
from tests.integration.proxy_fixture import free_port
from tests.integration.proxyutil import get

# Generous: a container start is served within tens of ms (bench/discovery.py measures it);
# the deadline is only there to fail instead of hanging.
LIVE = 10.0
ON = {"wharf.enable": "true", "wharf.port": "{port}"}  # on the host's network: its port

CONFIG = """
    [proxy]
    listen = ["127.0.0.1:{port}"]
    [providers.docker]
    endpoint = "{endpoint}"
    [[routes]]
    host = "named.test"
    service = "named"
"""


@pytest.fixture(scope="module")
def daemon(podman: Podman, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
           ) -> Iterator[tuple[Wharf, int]]:
    """One Wharf for the module, reading the session's podman; each test routes hosts of
    its own."""
    port = free_port()
    wharf = Wharf(tmp_path_factory.mktemp("docker-wharf"))
    wharf.write_config(CONFIG.format(port=port, endpoint=podman.endpoint))
    try:
        wharf.up()
        yield wharf, port
    finally:
        wharf.close()


def body(port: int, host: str) -> str:
    answer = get(port, "/", host=host)
    return answer.body.decode().strip() if answer.status == 200 else f"HTTP {answer.status}"


def answers(port: int, host: str, tries: int = 8) -> set[str]:
    """Who answers `host` over a few requests (the pool balances round robin)."""
    return {body(port, host) for _ in range(tries)}


def rows(wharf: Wharf) -> dict[str, dict]:
    return {r["source"]: r for r in wharf.status_json() if r["kind"] == "provider"}


def test_a_labelled_container_is_routed_through_the_proxy(
        daemon: tuple[Wharf, int], containers: Podman) -> None:  # noqa: F811
    wharf, port = daemon
    name, _ = containers.run_httpd(labels={**ON, "wharf.host": "one.test"})
    wait_until(lambda: body(port, "one.test") == name, LIVE, "the container to serve")
    row = rows(wharf)[f"container {name}"]
    assert (row["state"], row["routes"], row["services"]) == ("ok", 1, 1)
    (backend,) = [b for b in wharf.backends() if b["service"] == name]
    assert backend["host"] == "one.test" and backend["backend"].startswith("127.0.0.1:")


def test_a_second_container_of_the_service_joins_its_pool_and_a_stopped_one_leaves(
        daemon: tuple[Wharf, int], containers: Podman) -> None:  # noqa: F811
    wharf, port = daemon
    labels = {**ON, "wharf.service": "pool", "wharf.host": "pool.test"}
    first, _ = containers.run_httpd(labels=labels)
    wait_until(lambda: body(port, "pool.test") == first, LIVE, "the first container")
    second, _ = containers.run_httpd(labels=labels)
    wait_until(lambda: answers(port, "pool.test") == {first, second}, LIVE, "both in the pool")
    assert len([b for b in wharf.backends() if b["service"] == "pool"]) == 2
    containers.remove(first)
    # Requests leave it as soon as it stops accepting (retries go to the other); the engine's
    # event for the stop takes it out of the pool and out of status a little later.
    wait_until(lambda: f"container {first}" not in rows(wharf), LIVE, "the stopped one to leave")
    assert [b["service"] for b in wharf.backends() if b["service"] == "pool"] == ["pool"]
    assert answers(port, "pool.test") == {second}


def test_a_container_without_host_or_path_is_a_service_that_wharf_toml_routes_to(
        daemon: tuple[Wharf, int], containers: Podman) -> None:  # noqa: F811
    wharf, port = daemon
    name, _ = containers.run_httpd(labels={**ON, "wharf.service": "named"})
    wait_until(lambda: body(port, "named.test") == name, LIVE, "the route of wharf.toml")
    row = rows(wharf)[f"container {name}"]
    assert (row["routes"], row["services"]) == (0, 1)


def test_an_unlabelled_container_is_not_routed(
        daemon: tuple[Wharf, int], containers: Podman) -> None:  # noqa: F811
    wharf, port = daemon
    off, _ = containers.run_httpd(labels={"wharf.enable": "false", "wharf.host": "off.test"})
    on, _ = containers.run_httpd(labels={**ON, "wharf.host": "on.test"})
    wait_until(lambda: body(port, "on.test") == on, LIVE, "the enabled container")
    assert body(port, "off.test") == "HTTP 404"
    assert f"container {off}" not in rows(wharf)


def test_a_container_with_a_health_check_joins_only_once_healthy(
        daemon: tuple[Wharf, int], containers: Podman) -> None:  # noqa: F811
    wharf, port = daemon
    name, _ = containers.run_httpd(labels={**ON, "wharf.host": "hc.test"},
                                   health="test -e /www/ok")
    source = f"container {name}"
    wait_until(lambda: rows(wharf).get(source, {}).get("state") == "waiting", LIVE,
               "the container to be known and waiting")
    assert rows(wharf)[source]["problems"] == [
        "Docker health check: starting (joins once healthy)"]
    assert body(port, "hc.test") == "HTTP 404"
    containers.cli("exec", name, "sh", "-c", ": > /www/ok")
    containers.cli("healthcheck", "run", name)  # no systemd timer here: run it ourselves
    wait_until(lambda: body(port, "hc.test") == name, LIVE, "the healthy container to join")
    containers.cli("exec", name, "rm", "/www/ok")
    assert containers.cli("healthcheck", "run", name, check=False).returncode == 1
    wait_until(lambda: body(port, "hc.test") == "HTTP 404", LIVE, "the unhealthy one to leave")
    assert rows(wharf)[source]["problems"] == [
        "Docker health check: unhealthy (joins once healthy)"]


def test_a_bad_label_is_reported_and_the_other_containers_keep_serving(
        daemon: tuple[Wharf, int], containers: Podman) -> None:  # noqa: F811
    wharf, port = daemon
    good, _ = containers.run_httpd(labels={**ON, "wharf.host": "good.test"})
    bad, _ = containers.run_httpd(labels={"wharf.enable": "true", "wharf.host": "bad.test",
                                          "wharf.port": "http", "wharf.balance": "random"})
    source = f"container {bad}"
    wait_until(lambda: rows(wharf).get(source, {}).get("state") == "invalid", LIVE,
               "the refusal in status")
    assert rows(wharf)[source]["problems"] == [
        "label wharf.port: must be an integer, got 'http'",
        "label wharf.balance: must be one of \"round_robin\", \"weighted\", \"least_conn\", "
        "\"ip_hash\", \"hash\", \"cookie\", \"p2c\", \"ewma\", got 'random'"]
    wait_until(lambda: body(port, "good.test") == good, LIVE, "the good container")
    assert body(port, "bad.test") == "HTTP 404"
    assert f"{source}: label wharf.port: must be an integer" in wharf.run("status").stdout
    log = wharf.daemon_log.read_text()
    assert f"{source}: label wharf.port: must be an integer, got 'http'" in log
    check = wharf.run("check", "--providers")
    assert check.returncode == 2
    assert f"{source}: label wharf.port: must be an integer, got 'http'" in check.stderr


def test_the_engine_going_away_keeps_the_last_set_and_coming_back_resumes(
        daemon: tuple[Wharf, int], containers: Podman) -> None:  # noqa: F811
    wharf, port = daemon
    labels = {**ON, "wharf.service": "kept", "wharf.host": "kept.test"}
    kept, _ = containers.run_httpd(labels=labels)
    wait_until(lambda: body(port, "kept.test") == kept, LIVE, "the container")
    containers.stop_service()
    engine = f"engine {containers.endpoint}"
    wait_until(lambda: rows(wharf).get(engine, {}).get("state") == "unreachable", LIVE,
               "the loss in status")
    (problem,) = rows(wharf)[engine]["problems"]
    assert problem.startswith("unreachable since ") and "stay in force" in problem
    assert body(port, "kept.test") == kept  # the last known set still serves
    assert rows(wharf)[f"container {kept}"]["state"] == "ok"
    # meanwhile the containers change: the engine's answer, once back, is what counts
    newer, _ = containers.run_httpd(labels=labels)
    containers.remove(kept)
    containers.start_service()
    wait_until(lambda: answers(port, "kept.test") == {newer}, LIVE, "the set after the return")
    assert engine not in rows(wharf)
    assert "answers again" in wharf.daemon_log.read_text()

