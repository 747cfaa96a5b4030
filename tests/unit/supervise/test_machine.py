"""The process lifecycle, driven event by event with no process and no clock."""

import signal

import pytest

from wharf.supervise.machine import STABLE_UPTIME, Action, ExitStatus, Machine, Policy
from wharf.supervise.states import TRANSITIONS, IllegalTransition, State, check_transition

CRASH = ExitStatus(1)
CLEAN = ExitStatus(0)
KILLED = ExitStatus(None, signal.SIGKILL)


def running(policy: Policy | None = None, now: float = 0.0) -> Machine:
    m = Machine(policy or Policy(startsecs=1.0))
    m.start(now)
    m.spawned(now)
    m.timer(now + m.policy.startsecs)
    assert m.state == State.RUNNING
    return m


def test_start_spawns_and_waits_startsecs_before_running():
    m = Machine(Policy(startsecs=2.0))
    assert m.start(0.0) == [Action.SPAWN]
    assert m.state == State.STARTING
    m.spawned(0.0)
    assert m.deadline == 2.0
    assert m.timer(1.9) == [] and m.state == State.STARTING
    m.timer(2.0)
    assert m.state == State.RUNNING and m.deadline is None


def test_startsecs_zero_is_running_at_once():
    m = Machine(Policy(startsecs=0))
    m.start(0.0)
    m.spawned(0.0)
    assert m.state == State.RUNNING


def test_early_exit_backs_off_with_doubling_delay_then_fatal():
    m = Machine(Policy(startsecs=1.0, startretries=3, backoff=0.1, backoff_max=30.0))
    now = 0.0
    m.start(now)
    delays = []
    for _ in range(3):
        m.spawned(now)
        m.exited(CRASH, now + 0.05)
        assert m.state == State.BACKOFF
        delays.append(round(m.deadline - (now + 0.05), 6))
        now = m.deadline
        assert m.timer(now) == [Action.SPAWN]
    m.spawned(now)
    m.exited(CRASH, now + 0.05)
    assert delays == [0.1, 0.2, 0.4]
    assert m.state == State.FATAL
    assert "exited too quickly (exit status 1)" in m.reason
    assert "gave up after 4 attempts" in m.reason


def test_backoff_delay_is_capped():
    assert Policy(backoff=1.0, backoff_max=5.0).delay(10) == 5.0


def test_startretries_zero_goes_fatal_on_first_failure():
    m = Machine(Policy(startretries=0))
    m.start(0.0)
    m.spawn_failed("command not found: nope", 0.0)
    assert m.state == State.FATAL
    assert m.reason.startswith("spawn error: command not found: nope")


def test_spawn_failure_counts_as_failed_start():
    m = Machine(Policy(startretries=1))
    m.start(0.0)
    m.spawn_failed("permission denied", 0.0)
    assert m.state == State.BACKOFF


def test_running_resets_failed_starts():
    m = Machine(Policy(startsecs=1.0, startretries=1))
    m.start(0.0)
    m.spawned(0.0)
    m.exited(CRASH, 0.1)
    m.timer(m.deadline)
    m.spawned(1.0)
    m.timer(2.0)
    assert m.state == State.RUNNING and m.failed_starts == 0


def test_crash_from_running_restarts_immediately():
    m = running()
    assert m.exited(CRASH, 100.0) == [Action.SPAWN]
    assert m.state == State.STARTING
    assert m.restarts == 1
    assert m.last_exit == CRASH
    assert m.last_restart == str(CRASH)


def test_repeated_quick_crashes_back_off():
    m = running(Policy(startsecs=1.0, backoff=0.5))
    m.exited(CRASH, 5.0)  # first crash: at once
    m.spawned(5.0)
    m.timer(6.0)
    assert m.exited(CRASH, 7.0) == []
    assert m.state == State.BACKOFF and m.deadline == 7.5
    assert m.timer(7.5) == [Action.SPAWN]


def test_crash_after_stable_uptime_restarts_immediately_again():
    m = running(Policy(startsecs=1.0, backoff=0.5))
    m.exited(CRASH, 5.0)
    m.spawned(5.0)
    m.timer(6.0)
    assert m.exited(CRASH, 5.0 + STABLE_UPTIME) == [Action.SPAWN]


@pytest.mark.parametrize(
    ("autorestart", "status", "restarts"),
    [
        ("always", CLEAN, True),
        ("always", CRASH, True),
        ("on-failure", CLEAN, False),
        ("on-failure", CRASH, True),
        ("on-failure", KILLED, True),
        ("never", CRASH, False),
    ],
)
def test_autorestart_policy(autorestart, status, restarts):
    m = running(Policy(autorestart=autorestart))
    actions = m.exited(status, 100.0)
    assert (actions == [Action.SPAWN]) is restarts
    assert m.state == (State.STARTING if restarts else State.EXITED)


def test_on_failure_respects_expected_exit_codes():
    m = running(Policy(autorestart="on-failure", exit_codes=(0, 3)))
    assert m.exited(ExitStatus(3), 100.0) == []
    assert m.state == State.EXITED


def one_shot(autorestart: str, status: ExitStatus, **policy: object) -> Machine:
    """A process that exits with `status` well before its startsecs."""
    m = Machine(Policy(autorestart=autorestart, startsecs=1.0, **policy))  # type: ignore[arg-type]
    m.start(0.0)
    m.spawned(0.0)
    m.exited(status, 0.1)
    return m


@pytest.mark.parametrize("autorestart", ["never", "on-failure"])
def test_a_one_shot_job_that_succeeds_before_startsecs_is_exited_not_retried(autorestart):
    m = one_shot(autorestart, CLEAN)
    assert m.state == State.EXITED
    assert m.deadline is None and m.spawns == 1 and m.restarts == 0
    assert m.reason == "exit status 0" and m.last_exit == CLEAN
    assert m.timer(100.0) == [] and m.state == State.EXITED


def test_a_quick_exit_with_another_expected_code_is_exited_too():
    assert one_shot("on-failure", ExitStatus(3), exit_codes=(0, 3)).state == State.EXITED


@pytest.mark.parametrize("status", [CRASH, KILLED])
def test_a_one_shot_job_that_fails_before_startsecs_is_a_failed_start(status):
    m = one_shot("never", status)
    assert m.state == State.BACKOFF and "exited too quickly" in m.reason


def test_with_autorestart_always_a_quick_clean_exit_is_still_a_failed_start():
    """A server that exits 0 at once (a bad flag) must not look like a finished job."""
    m = one_shot("always", CLEAN)
    assert m.state == State.BACKOFF and "exited too quickly (exit status 0)" in m.reason


def test_an_exited_one_shot_job_runs_again_when_started():
    m = one_shot("never", CLEAN)
    assert m.start(5.0) == [Action.SPAWN] and m.state == State.STARTING


def test_stop_signals_then_kills_after_timeout():
    m = running(Policy(stop_timeout=5.0))
    assert m.stop(10.0) == [Action.SIGNAL]
    assert m.state == State.STOPPING and m.deadline == 15.0
    assert m.timer(15.0) == [Action.KILL]
    m.exited(KILLED, 15.1)
    assert m.state == State.STOPPED
    assert m.restarts == 0


def test_exit_while_stopping_never_restarts():
    m = running(Policy(autorestart="always"))
    m.stop(10.0)
    assert m.exited(CRASH, 10.1) == []
    assert m.state == State.STOPPED


def test_stop_during_backoff_cancels_retry():
    m = Machine(Policy())
    m.start(0.0)
    m.spawn_failed("nope", 0.0)
    assert m.stop(0.01) == []
    assert m.state == State.STOPPED and m.deadline is None


def test_stop_while_starting_signals():
    m = Machine(Policy())
    m.start(0.0)
    m.spawned(0.0)
    assert m.stop(0.5) == [Action.SIGNAL]
    assert m.state == State.STOPPING


@pytest.mark.parametrize("settled", [State.EXITED, State.FATAL])
def test_stop_of_a_dead_process_makes_it_stopped(settled):
    m = running(Policy(autorestart="never", startretries=0))
    if settled == State.FATAL:
        m = Machine(Policy(startretries=0))
        m.start(0.0)
        m.spawn_failed("x", 0.0)
    else:
        m.exited(CRASH, 10.0)
    assert m.state == settled
    assert m.stop(20.0) == []
    assert m.state == State.STOPPED


def test_restart_stops_then_starts_again():
    m = running()
    assert m.restart(10.0) == [Action.SIGNAL]
    assert m.exited(ExitStatus(None, signal.SIGTERM), 10.1) == [Action.SPAWN]
    assert m.state == State.STARTING
    assert m.restarts == 1
    assert m.last_restart == ""  # asked for: nothing to explain


def test_a_restart_asked_for_forgets_the_reason_of_an_earlier_crash():
    m = running()
    m.exited(CRASH, 100.0)
    m.spawned(100.0)
    m.timer(102.0)
    m.restart(110.0)
    assert m.last_restart == ""


def test_a_restart_the_daemon_decided_keeps_its_reason_after_the_new_start():
    m = running()
    m.restart(10.0, "RSS over max_memory")
    m.exited(ExitStatus(None, signal.SIGTERM), 10.1)
    m.spawned(10.1)
    m.timer(20.0)
    assert m.state == State.RUNNING and m.reason == ""
    assert m.last_restart == "RSS over max_memory"


def test_start_while_stopping_starts_after_exit():
    m = running()
    m.stop(10.0)
    assert m.start(10.05) == []
    assert m.exited(CLEAN, 10.1) == [Action.SPAWN]


def test_stop_after_restart_request_wins():
    m = running()
    m.restart(10.0)
    m.stop(10.05)
    assert m.exited(CLEAN, 10.1) == []
    assert m.state == State.STOPPED


def test_start_of_fatal_process_resets_attempts():
    m = Machine(Policy(startretries=0))
    m.start(0.0)
    m.spawn_failed("x", 0.0)
    assert m.start(1.0) == [Action.SPAWN]
    assert m.failed_starts == 0


def test_start_when_running_does_nothing():
    m = running()
    assert m.start(5.0) == []


def test_stale_timer_is_ignored():
    m = Machine(Policy())
    assert m.timer(100.0) == []
    assert m.state == State.STOPPED


def test_exit_status_text():
    assert str(ExitStatus(3)) == "exit status 3"
    assert str(ExitStatus(None, signal.SIGKILL)) == "killed by SIGKILL"


def test_every_state_has_a_transition_entry():
    assert set(TRANSITIONS) == set(State)


def test_illegal_transition_raises():
    with pytest.raises(IllegalTransition):
        check_transition(State.STOPPED, State.RUNNING)


def test_machine_only_makes_legal_transitions_under_random_events():
    """Any sequence of events keeps the machine inside the transition table."""
    import random

    rng = random.Random(7)
    events = ["start", "stop", "restart", "spawned", "failed", "exit", "timer"]
    for _ in range(300):
        m = Machine(Policy(startsecs=rng.choice([0, 1.0]), startretries=rng.randint(0, 3),
                           autorestart=rng.choice(["always", "on-failure", "never"])))
        now = 0.0
        alive = False
        for _ in range(40):
            now += rng.random()
            event = rng.choice(events)
            if event == "spawned" or event == "failed":
                continue  # only delivered right after a SPAWN action, below
            if event == "exit" and not alive:
                continue
            if event == "exit":
                actions = m.exited(rng.choice([CLEAN, CRASH, KILLED]), now)
                alive = False
            elif event == "timer":
                actions = m.timer(m.deadline if m.deadline is not None else now)
            else:
                actions = getattr(m, event)(now)
            if Action.SPAWN in actions:
                if rng.random() < 0.2:
                    m.spawn_failed("x", now)
                else:
                    m.spawned(now)
                    alive = True
            if m.state in (State.STOPPED, State.EXITED, State.FATAL, State.BACKOFF):
                assert not alive or m.state == State.STOPPING


def test_a_crash_records_every_transition_for_the_driver():
    m = running()
    m.transitions.clear()
    m.exited(CRASH, 100.0)
    assert m.transitions == [(State.RUNNING, State.EXITED), (State.EXITED, State.STARTING)]


def test_startsecs_zero_restart_clears_the_reason_like_any_start():
    m = Machine(Policy(startsecs=0))
    m.start(0.0)
    m.spawned(0.0)
    m.exited(KILLED, 5.0)
    m.spawned(5.0)
    assert m.state == State.RUNNING and m.reason == "" and m.failed_starts == 0


def test_a_refused_spawn_is_fatal_at_once_with_its_reason():
    m = Machine(Policy(startretries=3))
    assert m.start(0.0) == [Action.SPAWN]
    assert m.spawn_refused("port 8001 is already in use by pid 7 (nginx)", 0.0) == []
    assert m.state == State.FATAL and m.deadline is None
    assert m.reason == "port 8001 is already in use by pid 7 (nginx)"
    assert m.start(1.0) == [Action.SPAWN]  # a start tries again
