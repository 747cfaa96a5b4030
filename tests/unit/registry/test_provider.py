"""The throttle that coalesces the providers' bursts: leading edge, then once per window."""

from wharf.registry.provider import Throttle


def test_a_change_after_a_quiet_window_is_published_at_once():
    throttle = Throttle(0.05)
    assert throttle.change(10.0) == 0.0
    throttle.published(10.0)
    assert throttle.change(10.2) == 0.0


def test_changes_within_the_window_wait_for_its_end_and_go_as_one():
    throttle = Throttle(0.05)
    assert throttle.change(10.0) == 0.0
    throttle.published(10.0)
    delay = throttle.change(10.01)
    assert delay is not None and abs(delay - 0.04) < 1e-9
    assert throttle.change(10.02) is None  # carried by the publish already due
    assert throttle.change(10.03) is None
    throttle.published(10.05)
    delay = throttle.change(10.06)
    assert delay is not None and abs(delay - 0.04) < 1e-9
