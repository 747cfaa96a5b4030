"""Deltas between snapshots: diff, patch and the worker's follower, with no socket."""

import random
from dataclasses import replace

import pytest

from wharf.registry.delta import Delta, DeltaError, Follower, diff, patch
from wharf.registry.snapshot import (
    Backend,
    Certificate,
    Route,
    Service,
    Settings,
    Snapshot,
    Tls,
)


def service(name: str, *ports: int, **options: object) -> Service:
    return Service(name, tuple(Backend("10.0.0.1", p) for p in ports), **options)  # type: ignore[arg-type]


def base() -> Snapshot:
    services = tuple(service(f"s{i}", 8000 + i, 9000 + i) for i in range(5))
    routes = tuple(Route(host=f"h{i}.test", service=f"s{i}") for i in range(5))
    return Snapshot(version=1, listen=(("127.0.0.1", 8080),), routes=routes,
                    services=services)


def round_trip(old: Snapshot, delta: Delta) -> Delta:
    """`delta` as a worker that has `old` decodes it."""
    follower = Follower()
    follower.take(old.to_json())
    follower.take(delta.to_json())
    assert follower.delta is not None
    return follower.delta


def test_a_one_backend_change_carries_that_service_alone():
    old = base()
    new = replace(old, version=2, services=(old.services[0], service("s1", 8001, 7777),
                                            *old.services[2:]))
    delta = diff(old, new)
    assert delta.services == (new.services[1],) and delta.removed == ()
    assert delta.routes is None and delta.order is None and delta.settings is None
    assert delta.listen is None and delta.tls is None
    assert patch(old, delta) == new
    assert len(delta.to_json()) < len(new.to_json()) / 5


def test_unchanged_pieces_of_the_patched_snapshot_are_the_bases_objects():
    old = base()
    new = replace(old, version=2, services=(service("s0", 1), *old.services[1:]))
    patched = patch(old, round_trip(old, diff(old, new)))
    assert patched.routes is old.routes and patched.settings is old.settings
    assert patched.tls is old.tls
    assert all(a is b for a, b in zip(patched.services[1:], old.services[1:], strict=True))


def test_removed_and_added_services_and_a_new_order():
    old = base()
    added = service("new", 1)
    new = replace(old, version=3, services=(added, old.services[4], old.services[0]))
    delta = diff(old, new)
    assert set(delta.removed) == {"s1", "s2", "s3"} and delta.services == (added,)
    assert delta.order == ("new", "s4", "s0")
    assert patch(old, round_trip(old, delta)) == new


def test_a_service_added_at_the_end_needs_no_order():
    old = base()
    new = replace(old, version=2, services=(*old.services, service("s5", 1)))
    delta = diff(old, new)
    assert delta.order is None and patch(old, delta) == new


def test_routes_moved_and_added_go_as_indexes_of_the_base_and_new_routes():
    old = base()
    inserted = Route(path="/admin", service="s0", rate=3.0)
    new = replace(old, version=2, routes=(inserted, old.routes[3], *old.routes[:3]))
    delta = diff(old, new)
    assert delta.routes == (inserted, 3, 0, 1, 2)
    patched = patch(old, round_trip(old, delta))
    assert patched == new and patched.routes[1] is old.routes[3]


def test_settings_listeners_and_tls_go_only_when_changed():
    old = base()
    tls = Tls(certificates=(Certificate(("a.test",), "CERT", "KEY"),), hsts="max-age=1")
    new = replace(old, version=2, settings=Settings(idle_timeout=5.0),
                  listen=(("127.0.0.1", 8081),), listen_tls=(("127.0.0.1", 8443),), tls=tls)
    delta = round_trip(old, diff(old, new))
    assert delta.settings == new.settings and delta.tls == tls
    assert delta.listen == new.listen and delta.listen_tls == new.listen_tls
    assert patch(old, delta) == new


def test_a_delta_for_another_version_is_refused():
    old = base()
    delta = diff(old, replace(old, version=2))
    with pytest.raises(DeltaError):
        patch(replace(old, version=5), delta)
    with pytest.raises(DeltaError):
        Follower().take(delta.to_json())  # a delta before any snapshot


def test_a_follower_takes_whole_snapshots_and_deltas_in_turn():
    old = base()
    follower = Follower()
    assert follower.take(old.to_json()) == old and follower.delta is None
    new = replace(old, version=2, services=old.services[1:])
    assert follower.take(diff(old, new).to_json()) == new
    assert follower.delta is not None and follower.delta.removed == ("s0",)


def test_random_changes_patch_to_the_target_even_across_skipped_versions():
    """A worker may skip versions: the delta from what it has to the newest is exact."""
    rng = random.Random(14)
    snapshots = [base()]
    for version in range(2, 60):
        services = list(snapshots[-1].services)
        routes = list(snapshots[-1].routes)
        for _ in range(rng.randint(1, 3)):
            pick = rng.random()
            if pick < 0.3 and services:
                i = rng.randrange(len(services))
                added = Backend("10.0.0.2", rng.randrange(1, 9999))
                services[i] = replace(services[i], backends=(*services[i].backends, added))
            elif pick < 0.45 and services:
                gone = services.pop(rng.randrange(len(services)))
                routes = [r for r in routes if r.service != gone.name]
            elif pick < 0.65:
                name = f"n{version}-{rng.randrange(1000)}"
                services.insert(rng.randrange(len(services) + 1), service(name, 1))
                routes.insert(rng.randrange(len(routes) + 1), Route(path=f"/{name}",
                                                                    service=name))
            elif pick < 0.8 and len(routes) > 1:
                rng.shuffle(routes)
            else:
                services = [replace(s, retries=rng.randrange(4)) for s in services]
        snapshots.append(replace(snapshots[-1], version=version, services=tuple(services),
                                 routes=tuple(routes)))
    follower = Follower()
    follower.take(snapshots[0].to_json())
    i = 0
    while i < len(snapshots) - 1:
        j = min(len(snapshots) - 1, i + rng.randint(1, 5))
        assert follower.take(diff(snapshots[i], snapshots[j]).to_json()) == snapshots[j]
        i = j


def test_a_delta_of_no_service_keeps_the_bases_service_tuple():
    old = base()
    patched = patch(old, diff(old, replace(old, version=2, settings=Settings(idle_timeout=1.0))))
    assert patched.services is old.services and patched.settings.idle_timeout == 1.0
