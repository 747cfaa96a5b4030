"""RollGate: debounced rolls, one at a time, one more for what came during a roll; ignores."""

from __future__ import annotations

import pytest

from wharf.supervise.trigger import DEFAULT_IGNORES, RollGate, ignored


def test_a_change_rolls_once_quiet_has_passed():
    gate = RollGate(0.5)
    gate.changed(10.0)
    assert gate.deadline() == 10.5
    assert not gate.take(10.4)
    assert gate.take(10.5)
    assert gate.deadline() is None and gate.rolling


def test_a_burst_of_changes_gives_one_roll_after_the_last():
    gate = RollGate(0.5)
    for i in range(20):
        gate.changed(10.0 + i * 0.1)
        assert not gate.take(10.0 + i * 0.1 + 0.05)
    assert gate.take(11.9 + 0.5)
    gate.finished()
    assert gate.deadline() is None and not gate.take(100.0)
    assert gate.rolls == 1


def test_changes_during_a_roll_give_exactly_one_more_after_it():
    gate = RollGate(0.5)
    gate.changed(0.0)
    assert gate.take(0.5)
    for t in (1.0, 1.1, 1.2, 5.0):
        gate.changed(t)
        assert gate.deadline() is None and not gate.take(t + 1)  # never two at once
    gate.finished()
    assert gate.deadline() == 5.5
    assert gate.take(6.0)
    gate.finished()
    assert not gate.take(100.0) and gate.rolls == 2


def test_a_cron_fire_rolls_now_or_right_after_the_roll_under_way():
    gate = RollGate(0.5)
    gate.fire(3.0)
    assert gate.take(3.0)
    gate.fire(4.0)
    assert not gate.take(4.0)
    gate.finished()
    assert gate.take(4.0)


def test_a_fire_does_not_wait_for_a_pending_debounce():
    gate = RollGate(0.5)
    gate.changed(1.0)
    gate.fire(1.1)
    assert gate.take(1.1)


ROOT = "/srv/app/src"


@pytest.mark.parametrize(("path", "patterns", "expected"), [
    ("/srv/app/src/main.py", (), False),
    ("/srv/app/src/main.pyc", ("*.pyc",), True),
    ("/srv/app/src/node_modules/x/index.js", ("node_modules",), True),
    ("/srv/app/src/lib/node_modules.py", ("node_modules",), False),
    ("/srv/app/src/build/out.js", ("build/*.js",), True),
    ("/srv/app/src/other/build/out.js", ("build/*.js",), False),
    ("/srv/app/src/build/sub/out.js", ("build",), True),
    ("/srv/app/src/tmp", ("tmp",), True),
    ("/srv/app/src/a/__pycache__/m.cpython-311.pyc", DEFAULT_IGNORES, True),
    ("/srv/app/src/.git/index", DEFAULT_IGNORES, True),
    ("/srv/app/src/.main.py.swp", DEFAULT_IGNORES, True),
    ("/srv/app/src/main.py~", DEFAULT_IGNORES, True),
    ("/srv/app/src/main.py", DEFAULT_IGNORES, False),
])
def test_ignore_patterns_match_a_part_or_the_path_below_the_root(path, patterns, expected):
    assert ignored(path, [ROOT], patterns) is expected


def test_the_root_itself_is_not_ignored_by_a_part_above_it():
    # A project under a directory named like an ignore pattern still gets watched.
    assert not ignored("/home/u/build/src/a.py", ["/home/u/build/src"], ("build",))


def test_excluded_paths_and_what_is_under_them_are_ignored():
    excluded = ["/srv/app/.wharf", "/srv/app/logs/web.out.log"]
    assert ignored("/srv/app/.wharf/logs/web.out.log", ["/srv/app"], (), excluded)
    assert ignored("/srv/app/logs/web.out.log", ["/srv/app"], (), excluded)
    assert not ignored("/srv/app/logs/other.log", ["/srv/app"], (), excluded)
