"""The etcd provider's state: each key's value a source, a watch's events applied, a bad value
refused with its key paths while the last good one stays, and etcd's being unreachable."""

import json
from pathlib import Path

from wharf.clients.etcd import Event, KeyValue
from wharf.config.model import AppConfig
from wharf.registry.providers.etcd_keys import ROUTES, SERVICES, EtcdKeys, check_value

APPS = {"web": AppConfig(command=("x",), name="web")}
BASE = Path("/srv/site")


def kv(key: str, value: object, revision: int = 1) -> KeyValue:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return KeyValue(key, raw, mod_revision=revision)


def put(key: str, value: object, revision: int) -> Event:
    return Event("put", kv(key, value, revision))


def delete(key: str, revision: int) -> Event:
    return Event("delete", KeyValue(key, b"", mod_revision=revision))


def keys() -> EtcdKeys:
    return EtcdKeys("/wharf", ["http://127.0.0.1:2379"], BASE, APPS)


def test_a_route_key_is_one_route_table_named_for_its_key():
    source, issues = check_value("etcd:/wharf/routes/api", ROUTES, "api",
                                 b'{"host": "api.test", "service": "api"}', BASE, APPS)
    assert issues == () and source is not None
    assert source.name == "etcd:/wharf/routes/api" and source.services == {}
    (route,) = source.routes
    assert (route.host, route.path, route.service) == ("api.test", "/", "api")


def test_a_service_key_is_one_service_table_named_by_the_rest_of_the_key():
    value = {"servers": ["10.0.0.5:8080", {"address": "10.0.0.6:8080", "weight": 2}],
             "balance": "least_conn", "health": {"path": "/healthz", "interval": "2s"}}
    source, issues = check_value("etcd:/wharf/services/api", SERVICES, "api",
                                 json.dumps(value).encode(), BASE, APPS)
    assert issues == () and source is not None and source.routes == ()
    service = source.services["api"]
    assert service.name == "api" and service.balance == "least_conn"
    assert [(s.host, s.port, s.weight) for s in service.servers] == [
        ("10.0.0.5", 8080, 1), ("10.0.0.6", 8080, 2)]
    assert service.health is not None and service.health.interval == 2.0


def test_every_problem_of_a_value_is_reported_at_its_key_path_inside_it():
    _, issues = check_value("etcd:/wharf/routes/x", ROUTES, "x",
                            b'{"path": "x", "app": "nope", "colour": 1, "servers": ["a b"]}',
                            BASE, APPS)
    assert {(i.source, i.key, i.kind) for i in issues} == {
        ("etcd:/wharf/routes/x", "colour", "invalid"), ("etcd:/wharf/routes/x", "path",
                                                         "invalid"),
        ("etcd:/wharf/routes/x", "servers[0]", "invalid"),
        ("etcd:/wharf/routes/x", "app", "invalid")}
    _, issues = check_value("etcd:/wharf/services/api", SERVICES, "api",
                            b'{"app": "web", "servers": ["127.0.0.1:1"]}', BASE, APPS)
    assert [(i.key, i.message) for i in issues] == [("", "needs exactly one of app or servers")]


def test_a_value_that_is_not_a_json_object_or_a_bad_name_is_refused_whole():
    for value, start in ((b"{nope", "is not JSON: "), (b"[1]", "must be a JSON object"),
                         (b"null", "must be a JSON object"), (b"\xff", "is not JSON: ")):
        _, (issue,) = check_value("s", ROUTES, "x", value, BASE, APPS)
        assert issue.key == "" and issue.message.startswith(start), value
    _, (issue,) = check_value("s", ROUTES, "", b"{}", BASE, APPS)
    assert issue.message == "the key needs a name after routes/"
    _, issues = check_value("s", SERVICES, "a b", b'{"app": "web"}', BASE, APPS)
    assert [i.key for i in issues] == [""] and "service names use" in issues[0].message


def test_a_whole_read_makes_a_source_per_key_in_key_order_and_ignores_other_subtrees():
    state = keys()
    state.load(7, [kv("/wharf/routes/b", {"path": "/b", "app": "web"}),
                   kv("/wharf/instances/host-a/web/0", {"address": "10.0.0.1:80"}),
                   kv("/wharf/routes/a", {"path": "/a", "service": "api"}),
                   kv("/wharf/services/api", {"servers": ["127.0.0.1:9001"]}),
                   kv("/wharf/routesx", {"path": "/"})])
    update = state.update()
    assert update.provider == "etcd" and update.issues == () and state.revision == 7
    assert tuple(s.name for s in update.sources) == update.known == (
        "etcd:/wharf/routes/a", "etcd:/wharf/routes/b", "etcd:/wharf/services/api")


def test_a_bad_value_keeps_the_keys_last_good_one_and_is_reported():
    state = keys()
    state.load(3, [kv("/wharf/routes/a", {"path": "/a", "app": "web"})])
    good = state.update().sources
    assert state.apply([put("/wharf/routes/a", {"path": "a", "app": "web"}, 4)])
    update = state.update()
    assert update.sources == good and update.known == ("etcd:/wharf/routes/a",)
    assert [(i.source, i.key) for i in update.issues] == [("etcd:/wharf/routes/a", "path")]
    assert not state.apply([put("/wharf/routes/a", {"path": "a", "app": "web"}, 5)])
    assert state.apply([put("/wharf/routes/a", {"path": "/c", "app": "web"}, 6)])
    update = state.update()
    assert update.issues == () and update.sources[0].routes[0].path == "/c"


def test_a_key_never_good_is_known_but_not_in_force():
    state = keys()
    state.apply([put("/wharf/services/api", {"servers": []}, 2)])
    update = state.update()
    assert update.sources == () and update.known == ("etcd:/wharf/services/api",)
    assert len(update.issues) == 1


def test_a_deleted_key_takes_its_route_or_service_away():
    state = keys()
    state.load(3, [kv("/wharf/routes/a", {"path": "/a", "app": "web"}),
                   kv("/wharf/services/api", {"servers": ["127.0.0.1:1"]})])
    assert state.apply([delete("/wharf/services/api", 4), delete("/wharf/routes/nope", 5)])
    assert [s.name for s in state.update().sources] == ["etcd:/wharf/routes/a"]
    assert state.revision == 5


def test_events_of_other_subtrees_change_nothing_but_move_the_revision_on():
    state = keys()
    state.load(3, [])
    assert not state.apply([put("/wharf/instances/host-a/web/0", {"x": 1}, 9),
                            delete("/wharf/leader", 10)])
    assert state.revision == 10 and state.update().known == ()


def test_a_whole_read_again_replaces_what_was_known():
    state = keys()
    state.load(3, [kv("/wharf/routes/a", {"path": "/a", "app": "web"}),
                   kv("/wharf/routes/b", {"path": "a"})])
    state.load(20, [kv("/wharf/routes/b", {"path": "/b", "app": "web"})])
    update = state.update()
    assert [s.name for s in update.sources] == ["etcd:/wharf/routes/b"]
    assert update.issues == () and state.revision == 20


def test_new_apps_have_every_value_checked_again():
    state = keys()
    state.load(3, [kv("/wharf/routes/a", {"path": "/a", "app": "api"})])
    assert state.update().sources == ()
    state.reconfigure({**APPS, "api": AppConfig(command=("y",), name="api")})
    update = state.update()
    assert update.issues == () and update.sources[0].routes[0].app == "api"


def test_an_unreachable_etcd_keeps_the_last_known_set_and_says_since_when():
    state = keys()
    state.load(3, [kv("/wharf/routes/a", {"path": "/a", "app": "web"})])
    before = state.update()
    assert state.lost(1_700_000_000.0, "connection refused")
    assert not state.lost(1_700_000_009.0, "timed out")  # still since the first
    update = state.update()
    assert update.sources == before.sources
    assert update.known == ("etcd:/wharf/routes/a", "http://127.0.0.1:2379")
    (issue,) = update.issues
    assert (issue.source, issue.kind) == ("http://127.0.0.1:2379", "unreachable")
    assert issue.message.startswith("unreachable since 20")
    assert "(connection refused); the last known routes and services stay in force" in \
        issue.message
    assert state.update() == update  # the same update while it lasts: nothing to publish
    assert state.reached() == 1_700_000_000.0
    assert state.update() == before and state.reached() is None


def test_an_etcd_unreachable_from_the_start_says_nothing_was_read():
    state = keys()
    state.lost(1_700_000_000.0, "connection refused")
    (issue,) = state.update().issues
    assert issue.message.endswith("nothing was read from it yet")
