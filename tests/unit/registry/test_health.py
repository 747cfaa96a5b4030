"""Health counting: rise passes bring a backend up, fall failures take it down."""

from wharf.registry.health import HealthState


def timeline(state: HealthState, results: str) -> str:
    """Feed a string of checks (+ pass, - fail); return the state after each, U or D."""
    out = []
    for r in results:
        state.record(r == "+", "" if r == "+" else "status 500")
        out.append("U" if state.up else "D")
    return "".join(out)


def test_a_new_backend_starts_down_and_rises_after_rise_passes():
    assert timeline(HealthState(rise=2, fall=3), "++") == "DU"


def test_it_falls_after_fall_failures_in_a_row():
    state = HealthState(rise=1, fall=3)
    assert timeline(state, "+--+---") == "UUUUUUD"


def test_a_failure_breaks_a_rising_streak():
    assert timeline(HealthState(rise=3, fall=1), "++-+++") == "DDDDDU"


def test_record_says_when_the_state_changes():
    state = HealthState(rise=1, fall=1)
    assert state.record(True) is True
    assert state.record(True) is False
    assert state.record(False, "connect: refused") is True
    assert state.last_error == "connect: refused"
    assert state.record(True) is True and state.last_error == ""
