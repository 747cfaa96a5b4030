"""The throttle that coalesces the providers' bursts: leading edge, then once per window;
and the backoff of a provider that lost what it watches."""

import pytest

from wharf.registry.provider import Backoff, Throttle


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


def test_the_backoff_doubles_up_to_its_cap_with_each_wait_in_its_upper_half():
    backoff = Backoff(0.1, 1.0)
    assert [backoff.delay(0.999999) for _ in range(6)] == [
        pytest.approx(d) for d in (0.1, 0.2, 0.4, 0.8, 1.0, 1.0)]
    backoff = Backoff(0.1, 1.0)
    assert [backoff.delay(0.0) for _ in range(3)] == [pytest.approx(d) for d in (0.05, 0.1, 0.2)]


def test_the_backoff_starts_over_once_the_source_answers():
    backoff = Backoff(0.1, 1.0)
    for _ in range(5):
        backoff.delay(0.5)
    backoff.reset()
    assert backoff.delay(0.0) == pytest.approx(0.05)
