"""The reload planner: what runs and what the file says in, the ordered steps out."""

from __future__ import annotations

from dataclasses import replace

from wharf.config.model import AppConfig
from wharf.daemon.plan import Kind, Running, Step, addresses, plan_reload


def app(name: str, **kw: object) -> AppConfig:
    return AppConfig(command=("run", name), name=name, **kw)  # type: ignore[arg-type]


def running(*apps: AppConfig, counts: dict[str, int] | None = None,
            mixed: frozenset[str] = frozenset()) -> dict[str, Running]:
    counts = counts or {}
    return {a.name: Running(a, counts.get(a.name, a.instances), a.name not in mixed)
            for a in apps}


def kinds(steps: list[Step]) -> list[tuple[str, str]]:
    return [(s.kind.value, s.app) for s in steps]


def test_an_unchanged_app_is_kept():
    web = app("web", instances=3)
    assert kinds(plan_reload(running(web), {"web": web})) == [("keep", "web")]


def test_a_new_app_is_added_and_a_gone_one_removed():
    web, api = app("web"), app("api")
    assert kinds(plan_reload(running(web), {"api": api})) == [("add", "api"), ("remove", "web")]


def test_only_the_count_changed_scales():
    web = app("web", instances=2)
    steps = plan_reload(running(web), {"web": replace(web, instances=5)})
    assert kinds(steps) == [("scale", "web")] and steps[0].config.instances == 5


def test_an_app_scaled_by_hand_is_scaled_back_to_the_file():
    web = app("web", instances=3)
    steps = plan_reload(running(web, counts={"web": 2}), {"web": web})
    assert kinds(steps) == [("scale", "web")]


def test_a_changed_command_rolls_and_carries_the_new_count():
    web = app("web", instances=2)
    new = replace(web, command=("run", "v2"), instances=4)
    steps = plan_reload(running(web), {"web": new})
    assert kinds(steps) == [("roll", "web")] and steps[0].config == new


def test_a_changed_app_with_fixed_ports_restarts_in_place():
    web = app("web", port=8001)
    steps = plan_reload(running(web), {"web": replace(web, env={"V": "2"})})
    assert kinds(steps) == [("restart in place", "web")]


def test_an_app_left_half_on_each_version_rolls_again_even_to_its_old_config():
    web = app("web", instances=2)
    assert kinds(plan_reload(running(web, mixed=frozenset({"web"})), {"web": web})) == \
        [("roll", "web")]


def test_a_renamed_app_starts_before_its_predecessor_is_removed():
    old, new = app("web"), app("www")
    steps = plan_reload(running(old), {"www": new})
    assert kinds(steps) == [("add", "www"), ("remove", "web")]
    assert not steps[1].early


def test_a_removal_whose_socket_a_new_app_takes_goes_first():
    old = app("web", socket=("127.0.0.1", 9000))
    new = app("www", socket=("127.0.0.1", 9000))
    steps = plan_reload(running(old), {"www": new})
    assert kinds(steps) == [("remove", "web"), ("add", "www")] and steps[0].early


def test_a_removal_whose_fixed_ports_a_new_app_takes_goes_first():
    old = app("web", port=8001, instances=3)
    new = app("www", port=8003)  # overlaps web's third port
    assert kinds(plan_reload(running(old), {"www": new}))[0] == ("remove", "web")


def test_a_removal_whose_port_a_roll_moves_to_goes_first():
    old, moved = app("old", port=8001), app("web", port=8000)
    steps = plan_reload(running(old, moved), {"web": replace(moved, port=8001)})
    assert kinds(steps) == [("remove", "old"), ("restart in place", "web")]


def test_a_kept_app_does_not_force_removals_first():
    old, kept = app("old", socket=("127.0.0.1", 9000)), app("web", port=9000)
    # web keeps 9000 as it has; a conflict the config checks refuse, not the planner's
    assert kinds(plan_reload(running(old, kept), {"web": kept})) == \
        [("keep", "web"), ("remove", "old")]


def test_steps_follow_the_files_order_with_additions_first():
    a, b, c = app("a"), app("b", instances=2), app("c")
    new = {"c": replace(c, env={"X": "1"}), "b": replace(b, instances=1), "d": app("d"),
           "a": a}
    assert kinds(plan_reload(running(a, b, c), new)) == \
        [("add", "d"), ("roll", "c"), ("scale", "b"), ("keep", "a")]


def test_every_app_gets_exactly_one_step():
    apps = [app(f"a{i}", instances=1 + i % 3) for i in range(12)]
    new = {a.name: (replace(a, instances=2) if i % 4 == 0 else
                    replace(a, env={"V": "2"}) if i % 4 == 1 else a)
           for i, a in enumerate(apps) if i % 5}
    new["fresh"] = app("fresh")
    steps = plan_reload(running(*apps), new)
    assert sorted(s.app for s in steps) == sorted({*new, *(a.name for a in apps)})
    assert {s.kind for s in steps} == set(Kind) - {Kind.RESTART_IN_PLACE}


def test_addresses_of_socket_and_fixed_ports():
    assert addresses(app("w")) == frozenset()
    assert addresses(app("w", port=8000, instances=2)) == {("*", 8000), ("*", 8001)}
    assert addresses(app("w", port=8000, instances=2), count=1) == {("*", 8000)}
    assert ("*", 9000) in addresses(app("w", socket=("::1", 9000)))


def test_a_unix_socket_is_held_by_its_path_alone():
    sock = ("unix:/run/w.sock", 0)
    assert addresses(app("w", socket=sock)) == {sock}  # not ("*", 0): no port to clash on
