"""The Docker provider's label mapping: inspect answers in, one Update out (no engine)."""

from __future__ import annotations

from typing import Any

from wharf.config.balancing import HealthConfig
from wharf.config.model import Server
from wharf.registry.providers.docker import _container_of
from wharf.registry.providers.docker_labels import Container, containers_update, engine_lost
from wharf.registry.table import Source, merge

HOST = "127.0.0.1"


def inspect(name: str, labels: dict[str, str], *, created: str = "2026-01-01T10:00:00.5Z",
            networks: dict[str, str] | None = None, exposed: tuple[str, ...] = (),
            published: dict[str, str] | None = None, health: str | None = None,
            running: bool = True, paused: bool = False, docker: bool = False) -> dict[str, Any]:
    """An inspect answer shaped as the engines give it: podman's (a Health with an empty
    status when there is no check) or Docker's (no Health then)."""
    state: dict[str, Any] = {"Running": running, "Paused": paused,
                             "Status": "paused" if paused else "running"}
    config: dict[str, Any] = {"Labels": {"wharf.enable": "true", **labels},
                              "ExposedPorts": {p: {} for p in exposed} or None}
    if health is not None:
        config["Healthcheck"] = {"Test": ["CMD-SHELL", "true"]}
        state["Health"] = {"Status": health, "FailingStreak": 0}
    elif not docker:
        state["Health"] = {"Status": "", "FailingStreak": 0, "Log": None}
    return {
        "Id": f"{name}-id", "Name": f"/{name}", "Created": created, "State": state,
        "Config": config,
        "NetworkSettings": {
            "Networks": {n: {"IPAddress": ip, "Gateway": "10.88.0.1"}
                         for n, ip in (networks or {}).items()},
            "Ports": {p: [{"HostIp": "", "HostPort": h}] for p, h in (published or {}).items()},
        },
        "HostConfig": {"NetworkMode": "bridge" if networks else "host"},
    }


def update(*answers: dict[str, Any]):
    return containers_update([Container.from_inspect(a) for a in answers], HOST)


def problems(*answers: dict[str, Any]) -> list[str]:
    return [str(i) for i in update(*answers).issues]


def test_a_container_on_the_hosts_network_is_reached_at_the_configured_host():
    (source,) = update(inspect("web1", {"wharf.port": "8080", "wharf.host": "a.test"})).sources
    assert source.name == "container web1"
    service = source.services["web1"]  # named for the container by default
    assert service.servers == (Server(HOST, 8080),)
    (route,) = source.routes
    assert (route.host, route.path, route.service) == ("a.test", "/", "web1")


def test_a_container_on_a_network_is_reached_at_its_address_and_its_one_exposed_port():
    answer = inspect("api", {"wharf.path": "/api"}, networks={"podman": "10.88.0.2"},
                     exposed=("80/tcp",), published={"80/tcp": "18077"})
    (source,) = update(answer).sources
    assert source.services["api"].servers == (Server("10.88.0.2", 80),)
    assert (source.routes[0].host, source.routes[0].path) == (None, "/api")


def test_wharf_network_picks_one_of_several_networks_else_the_first_by_name():
    nets = {"front": "10.1.0.2", "back": "10.2.0.2"}
    first = update(inspect("a", {"wharf.port": "80"}, networks=nets)).sources[0]
    assert first.services["a"].servers[0].host == "10.2.0.2"
    picked = update(inspect("a", {"wharf.port": "80", "wharf.network": "front"},
                            networks=nets)).sources[0]
    assert picked.services["a"].servers[0].host == "10.1.0.2"
    assert problems(inspect("a", {"wharf.port": "80", "wharf.network": "db"}, networks=nets)
                    ) == ["container a: label wharf.network: no network 'db' with an address "
                          "(networks: back, front)"]


def test_on_the_hosts_network_the_port_is_the_one_published_or_exposed_else_a_label():
    assert update(inspect("a", {}, exposed=("9000/tcp",))).sources[0].services[
        "a"].servers[0].port == 9000
    assert problems(inspect("b", {})) == [
        "container b: label wharf.port: must be set: the container exposes no port"]
    assert problems(inspect("c", {}, networks={"n": "10.0.0.3"},
                            exposed=("80/tcp", "443/tcp", "53/udp"))) == [
        "container c: label wharf.port: must be set: the container exposes 2 ports (80, 443)"]


def test_a_container_without_host_or_path_defines_only_its_service():
    (source,) = update(inspect("db1", {"wharf.port": "5000", "wharf.service": "db"})).sources
    assert source.routes == () and list(source.services) == ["db"]


def test_containers_of_one_service_are_its_backends_defined_by_the_oldest():
    labels = {"wharf.service": "web", "wharf.host": "w.test", "wharf.balance": "least_conn"}
    newer = inspect("web-b", {**labels, "wharf.port": "81", "wharf.weight": "3"},
                    created="2026-01-01T10:00:01.12Z")  # after .1: the engine trims zeros
    older = inspect("web-a", {**labels, "wharf.port": "80"}, created="2026-01-01T10:00:01.1Z")
    one, two = update(newer, older).sources
    assert (one.name, two.name) == ("container web-a", "container web-b")
    service = one.services["web"]
    assert service.balance == "least_conn"
    assert service.servers == (Server(HOST, 80), Server(HOST, 81, 3))
    assert len(one.routes) == 1 and two.routes == () and two.services == {}
    assert merge([one, two]).conflicts == ()  # the merge sees each definition once


def test_a_container_whose_service_labels_differ_from_the_oldest_is_left_out():
    older = inspect("a", {"wharf.service": "s", "wharf.port": "80", "wharf.retries": "3"},
                    created="2026-01-01T10:00:00Z")
    newer = inspect("b", {"wharf.service": "s", "wharf.port": "81",
                          "wharf.health.path": "/up"}, created="2026-01-01T10:00:05Z")
    result = update(older, newer)
    assert [s.name for s in result.sources] == ["container a"]
    assert [(i.key, i.kind) for i in result.issues] == [
        ("label wharf.health.path", "invalid"), ("label wharf.retries", "invalid")]
    assert "'3' on container a, the first of service s" in result.issues[1].message
    assert result.known == ("container a", "container b")


def test_bad_labels_are_each_reported_and_only_that_container_is_left_out():
    bad = inspect("bad", {"wharf.port": "http", "wharf.path": "api", "wharf.weight": "0",
                          "wharf.balance": "random", "wharf.health.rise": "x",
                          "wharf.host": "a b", "wharf.prot": "80"})
    good = inspect("good", {"wharf.port": "80"})
    result = update(bad, good)
    assert [s.name for s in result.sources] == ["container good"]
    assert sorted(i.key for i in result.issues) == [
        "label wharf.balance", "label wharf.health.rise", "label wharf.host", "label wharf.path",
        "label wharf.port", "label wharf.prot", "label wharf.weight"]
    messages = {i.key: i.message for i in result.issues}
    assert messages["label wharf.port"] == "must be an integer, got 'http'"
    assert messages["label wharf.prot"] == "unknown label (did you mean wharf.port?)"
    assert messages["label wharf.weight"] == "weight must be >= 1, got 0"
    assert {i.source for i in result.issues} == {"container bad"}


def test_a_bad_service_name_is_reported_at_its_label():
    assert problems(inspect("a", {"wharf.port": "80", "wharf.service": "no spaces"})) == [
        "container a: label wharf.service: service names use letters, digits, '.', '_' and "
        "'-' (at most 64), starting with a letter or digit"]


def test_service_labels_take_the_config_keys_values_numbers_and_durations_alike():
    labels = {"wharf.port": "80", "wharf.retries": "4", "wharf.retry_budget": "0.5",
              "wharf.slow_start": "10s", "wharf.health.path": "/healthz",
              "wharf.health.interval": "500ms", "wharf.health.rise": "1",
              "wharf.health.status": "200"}
    service = update(inspect("a", labels)).sources[0].services["a"]
    assert (service.retries, service.retry_budget, service.slow_start) == (4, 0.5, 10.0)
    assert service.health == HealthConfig(path="/healthz", interval=0.5, rise=1,
                                          status=(200, 200))


def test_a_container_with_a_docker_health_check_joins_only_when_healthy():
    for health in ("starting", "unhealthy", ""):
        result = update(inspect("a", {"wharf.port": "80"}, health=health))
        assert result.sources == () and result.known == ("container a",)
        (issue,) = result.issues
        assert issue.kind == "waiting" and issue.message.startswith(
            f"Docker health check: {health or 'starting'}")
    assert len(update(inspect("a", {"wharf.port": "80"}, health="healthy")).sources) == 1


def test_without_a_health_check_a_running_container_joins_on_either_engine():
    for docker in (False, True):
        assert len(update(inspect("a", {"wharf.port": "80"}, docker=docker)).sources) == 1
    disabled = inspect("a", {"wharf.port": "80"}, docker=True)
    disabled["Config"]["Healthcheck"] = {"Test": ["NONE"]}
    assert len(update(disabled).sources) == 1


def test_a_paused_container_waits():
    result = update(inspect("a", {"wharf.port": "80"}, paused=True))
    assert result.sources == () and [i.message for i in result.issues] == ["paused"]


def test_the_oldest_containers_route_wins_a_conflict_between_services():
    old = inspect("old", {"wharf.port": "80", "wharf.host": "x.test"},
                  created="2026-01-01T09:00:00.123456789Z")
    new = inspect("new", {"wharf.port": "81", "wharf.host": "x.test"},
                  created="2026-01-01T09:00:00.9Z")
    table = merge(list(update(new, old).sources))
    assert [r.service for r in table.routes] == ["old"]
    assert [str(c) for c in table.conflicts] == [
        "container new: routes[0]: ignored: x.test/ is routed by container old"]


def test_a_lost_engine_is_reported_and_the_last_set_kept():
    last = update(inspect("a", {"wharf.port": "80"}))
    lost = engine_lost(last, "engine unix:///d.sock", "2026-01-01 10:00:00", "refused")
    assert lost.sources == last.sources
    assert lost.known == ("engine unix:///d.sock", "container a")
    assert lost.issues[0].kind == "unreachable"
    assert lost.issues[0].message == ("unreachable since 2026-01-01 10:00:00 (refused); the "
                                      "last known containers stay in force")


def test_an_event_line_names_its_container_and_what_happened():
    assert _container_of(b'{"Type":"container","Action":"start","id":"abc"}') == ("abc",
                                                                                  "start")
    assert _container_of(b'{"status":"health_status: healthy","id":"abc"}') == (
        "abc", "health_status")
    assert _container_of(b'{"Action":"die","Actor":{"ID":"abc"}}') == ("abc", "die")
    assert _container_of(b'{"Action":"exec_died","id":"abc"}') == ("abc", "exec_died")
    assert _container_of(b'{"Action":"start"}') == ("", "")
    assert _container_of(b"not json") == ("", "")


def test_sources_compare_equal_when_nothing_changed():  # the registry drops a same update
    answer = inspect("a", {"wharf.port": "80", "wharf.host": "a.test"})
    assert update(answer) == update(answer)
    assert isinstance(update(answer).sources[0], Source)
