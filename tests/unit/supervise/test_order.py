"""The start/stop order of depends_on: which apps may start, why others wait, stop waves."""

from __future__ import annotations

import itertools

import pytest

from wharf.supervise.order import (
    ABSENT,
    InstanceView,
    Stand,
    Standing,
    blockers,
    reason,
    standing,
    startable,
    stop_waves,
    stuck,
    with_dependencies,
)
from wharf.supervise.states import State

S = State
UP = Standing(Stand.UP, "RUNNING")
DONE = Standing(Stand.UP, "EXITED")
GOING = Standing(Stand.GOING, "STARTING")
FATAL = Standing(Stand.FAILED, "FATAL")
STOPPED = Standing(Stand.STOPPED, "STOPPED")
WAITING = Standing(Stand.WAITING, "itself waiting")
GRAPH = {"web": ("db-migrate", "redis"), "db-migrate": ("db",), "redis": (), "db": (),
         "worker": ("redis",)}


def view(state: State, ready: bool = False, ok: bool = False, job: bool = False) -> InstanceView:
    return InstanceView(state, ready, ok, job)


@pytest.mark.parametrize(("views", "stand", "label"), [
    ([view(S.RUNNING, ready=True)] * 2, Stand.UP, "RUNNING"),
    ([view(S.RUNNING, ready=True), view(S.RUNNING)], Stand.GOING, "not ready"),
    ([view(S.RUNNING, ready=True), view(S.STARTING)], Stand.GOING, "STARTING"),
    ([view(S.BACKOFF)], Stand.GOING, "BACKOFF"),
    ([view(S.STOPPING)], Stand.GOING, "STOPPING"),
    ([view(S.RUNNING, ready=True), view(S.FATAL)], Stand.FAILED, "FATAL"),
    ([view(S.EXITED, ok=True, job=True)], Stand.UP, "EXITED"),
    ([view(S.EXITED, ok=False, job=True)], Stand.FAILED, "EXITED"),
    ([view(S.RUNNING, ready=True, job=True)], Stand.GOING, "RUNNING, a job: counts once it exits"),
    ([view(S.STOPPED)], Stand.STOPPED, "STOPPED"),
    ([view(S.STOPPED), view(S.RUNNING, ready=True)], Stand.STOPPED, "STOPPED"),
])
def test_an_app_stands_by_its_worst_instance(views, stand, label):
    assert standing(views) == Standing(stand, label)


def test_a_wanted_app_waits_whatever_its_instances_were():
    assert standing([view(S.FATAL)], wanted=True).stand == Stand.WAITING
    assert standing([view(S.STOPPED)], wanted=True).stand == Stand.WAITING


def test_every_combination_of_states_gives_one_standing():
    for states in itertools.product(State, repeat=2):
        for ready, ok, job in itertools.product((False, True), repeat=3):
            result = standing([view(s, ready and s == S.RUNNING, ok and s == S.EXITED, job)
                               for s in states])
            assert result.stand in Stand and result.label
            counts = all((s == S.EXITED and ok) if job else
                         (s == S.RUNNING and ready) or (s == S.EXITED and ok) for s in states)
            assert (result.stand == Stand.UP) == counts, (states, ready, ok, job)


def test_apps_without_dependencies_start_at_once():
    assert startable(["redis", "db"], GRAPH, {}) == ["redis", "db"]


def test_an_app_starts_once_every_dependency_is_up_or_done():
    standings = {"db-migrate": DONE, "redis": GOING}
    assert startable(["web"], GRAPH, standings) == []
    assert startable(["web"], GRAPH, {**standings, "redis": UP}) == ["web"]


@pytest.mark.parametrize("dep", [GOING, FATAL, STOPPED, WAITING, ABSENT])
def test_any_dependency_not_up_holds_an_app(dep):
    assert startable(["web"], GRAPH, {"db-migrate": dep, "redis": UP}) == []
    assert blockers("web", GRAPH, {"db-migrate": dep, "redis": UP}) == [("db-migrate", dep)]


def test_the_reason_names_each_dependency_and_its_state():
    standings = {"db-migrate": FATAL, "redis": GOING}
    assert reason("web", GRAPH, standings) == "waiting for db-migrate (FATAL), redis (STARTING)"
    assert reason("redis", GRAPH, standings) == ""


@pytest.mark.parametrize(("dep", "is_stuck"), [(GOING, False), (UP, False), (FATAL, True),
                                                (STOPPED, True), (ABSENT, True)])
def test_a_wait_is_stuck_when_a_dependency_will_not_come_by_itself(dep, is_stuck):
    assert stuck("web", GRAPH, {"db-migrate": dep, "redis": UP}) is is_stuck


def test_a_wait_on_a_waiting_dependency_is_stuck_only_if_that_one_is():
    standings = {"web": WAITING, "db-migrate": WAITING, "db": GOING, "redis": UP}
    assert not stuck("web", GRAPH, standings)
    assert stuck("web", GRAPH, {**standings, "db": FATAL})


def test_start_of_an_app_brings_its_stopped_and_failed_dependencies_first():
    standings = {"db": STOPPED, "db-migrate": FATAL, "redis": UP, "web": STOPPED}
    assert with_dependencies(["web"], GRAPH, standings) == ["db", "db-migrate", "web"]
    assert with_dependencies(["web", "worker"], GRAPH, standings) == \
        ["db", "db-migrate", "web", "worker"]
    running = {"db": UP, "db-migrate": DONE, "redis": GOING}
    assert with_dependencies(["web"], GRAPH, running) == ["web"]


def test_dependents_stop_before_their_dependencies():
    waves = stop_waves(["db", "db-migrate", "redis", "web", "worker"], GRAPH)
    assert waves == [["web", "worker"], ["db-migrate", "redis"], ["db"]]


def test_stop_waves_of_unrelated_apps_are_one_wave():
    assert stop_waves(["a", "b", "c"], {}) == [["a", "b", "c"]]


def test_stop_waves_ignore_apps_not_being_stopped():
    assert stop_waves(["redis", "db"], GRAPH) == [["redis", "db"]]


def test_every_stop_wave_order_respects_every_edge():
    names = list(GRAPH)
    for perm in itertools.permutations(names):
        waves = stop_waves(perm, GRAPH)
        position = {n: i for i, wave in enumerate(waves) for n in wave}
        assert sorted(position) == sorted(names)
        assert all(position[a] < position[d] for a, deps in GRAPH.items() for d in deps)
