"""The renewal rules: when each name is ordered, backoff after failures, the rate limit."""

from __future__ import annotations

import pytest

from wharf.certs.renewal import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    ORDER_WINDOW,
    ORDERS_PER_WINDOW,
    Failure,
    Held,
    Plan,
    Wanted,
    backoff,
    due_at,
    plan,
    recent_starts,
    renew_at,
    retry_at,
)

DAY = 86400.0
NOW = 1_000_000_000.0


def ninety_days(issued: float) -> Held:
    return Held(not_before=issued, not_after=issued + 90 * DAY)


def test_a_certificate_renews_when_a_third_of_its_lifetime_is_left():
    assert renew_at(ninety_days(0.0)) == 60 * DAY


def test_a_seven_day_leaf_renews_after_four_days_and_eight_hours():
    held = Held(0.0, 7 * DAY)
    assert renew_at(held) == pytest.approx(7 * DAY * 2 / 3)


def test_an_ari_window_earlier_than_the_rule_wins():
    assert renew_at(Held(0.0, 90 * DAY, suggested=30 * DAY)) == 30 * DAY


def test_an_ari_window_later_than_the_rule_does_not_delay_it():
    assert renew_at(Held(0.0, 90 * DAY, suggested=80 * DAY)) == 60 * DAY


@pytest.mark.parametrize(("count", "wait"), [
    (0, 0.0), (1, 60.0), (2, 120.0), (3, 240.0), (10, 60.0 * 512), (11, BACKOFF_MAX),
    (50, BACKOFF_MAX), (10_000, BACKOFF_MAX)])
def test_backoff_starts_at_a_minute_and_doubles_up_to_twelve_hours(count: int, wait: float):
    assert backoff(count) == wait


def test_backoff_is_never_shorter_after_more_failures():
    waits = [backoff(n) for n in range(100)]
    assert waits == sorted(waits)


def test_no_failure_means_no_wait():
    assert retry_at(None) == 0.0


def test_a_failure_waits_from_when_it_happened():
    assert retry_at(Failure(count=2, at=NOW)) == NOW + 2 * BACKOFF_FIRST


def test_a_name_without_a_certificate_is_due_at_once():
    assert due_at(None, None) == 0.0


def test_a_name_without_a_certificate_that_failed_waits_for_its_backoff():
    assert due_at(None, Failure(1, NOW)) == NOW + BACKOFF_FIRST


def test_a_held_certificate_is_due_at_its_renewal_time():
    assert due_at(ninety_days(NOW), None) == NOW + 60 * DAY


def test_a_failed_renewal_waits_for_the_later_of_renewal_time_and_backoff():
    held = ninety_days(NOW - 61 * DAY)  # due a day ago
    assert due_at(held, Failure(3, NOW)) == NOW + 4 * BACKOFF_FIRST


def test_a_forced_renewal_ignores_the_backoff():
    held = ninety_days(NOW - 61 * DAY)
    assert due_at(held, Failure(3, NOW), forced=True) == 0.0


def test_a_forced_renewal_of_a_fresh_certificate_is_due_now():
    held = ninety_days(NOW)  # renew_at is in the future: forced means now
    assert plan([Wanted("a")], {"a": held}, {}, ["a"], [], NOW).order == ("a",)


def test_nothing_to_manage_means_no_wake_up():
    assert plan([], {}, {}, [], [], NOW) == Plan((), None)


def test_new_names_are_ordered_in_config_order():
    assert plan([Wanted("b"), Wanted("a")], {}, {}, [], [], NOW).order == ("b", "a")


def test_a_fresh_certificate_is_left_alone_until_its_renewal_time():
    held = ninety_days(NOW - DAY)
    result = plan([Wanted("a")], {"a": held}, {}, [], [], NOW)
    assert result == Plan((), renew_at(held))


def test_an_expired_certificate_is_renewed_now():
    held = Held(NOW - 100 * DAY, NOW - 10 * DAY)
    assert plan([Wanted("a")], {"a": held}, {}, [], [], NOW).order == ("a",)


def test_a_certificate_at_exactly_its_renewal_time_is_renewed():
    held = ninety_days(NOW - 60 * DAY)
    assert plan([Wanted("a")], {"a": held}, {}, [], [], NOW).order == ("a",)


def test_a_certificate_a_second_before_its_renewal_time_waits_that_second():
    held = ninety_days(NOW - 60 * DAY + 1)
    assert plan([Wanted("a")], {"a": held}, {}, [], [], NOW) == Plan((), NOW + 1)


def test_the_wake_up_is_the_earliest_of_every_name():
    held = {"a": ninety_days(NOW - DAY), "b": ninety_days(NOW - 2 * DAY)}
    result = plan([Wanted("a"), Wanted("b")], held, {"c": Failure(1, NOW)}, [], [], NOW)
    assert result.wake_at == renew_at(held["b"])


def test_a_failed_name_waits_while_the_others_are_ordered():
    result = plan([Wanted("a"), Wanted("b")], {}, {"a": Failure(1, NOW - 10)}, [], [], NOW)
    assert result == Plan(("b",), NOW - 10 + BACKOFF_FIRST)


def test_a_failed_name_is_ordered_once_its_backoff_is_over():
    result = plan([Wanted("a")], {}, {"a": Failure(1, NOW - BACKOFF_FIRST)}, [], [], NOW)
    assert result.order == ("a",)


def test_at_most_the_limit_of_orders_start_in_one_window():
    names = [Wanted(f"n{i}") for i in range(12)]
    result = plan(names, {}, {}, [], [], NOW)
    assert result.order == tuple(f"n{i}" for i in range(ORDERS_PER_WINDOW))
    assert result.wake_at == NOW + ORDER_WINDOW


def test_recent_orders_use_up_the_window():
    recent = [NOW - 50, NOW - 40, NOW - 30]
    result = plan([Wanted(f"n{i}") for i in range(5)], {}, {}, [], recent, NOW)
    assert len(result.order) == ORDERS_PER_WINDOW - 3
    assert result.wake_at == NOW - 50 + ORDER_WINDOW  # the oldest leaves the window first


def test_a_full_window_orders_nothing_and_wakes_when_the_oldest_leaves():
    recent = [NOW - 59 + i for i in range(ORDERS_PER_WINDOW)]
    result = plan([Wanted("a")], {}, {}, [], recent, NOW)
    assert result == Plan((), NOW - 59 + ORDER_WINDOW)


def test_orders_older_than_the_window_do_not_count():
    recent = [NOW - ORDER_WINDOW - 1] * 20
    assert len(plan([Wanted(f"n{i}") for i in range(3)], {}, {}, [], recent, NOW).order) == 3


def test_forced_names_go_first_when_the_rate_limit_bites():
    names = [Wanted(f"n{i}") for i in range(8)]
    result = plan(names, {}, {}, ["n7"], [], NOW)
    assert result.order[0] == "n7" and len(result.order) == ORDERS_PER_WINDOW


def test_a_forced_name_still_obeys_the_rate_limit():
    recent = [NOW - 1] * ORDERS_PER_WINDOW
    result = plan([Wanted("a")], {"a": ninety_days(NOW)}, {}, ["a"], recent, NOW)
    assert result == Plan((), NOW - 1 + ORDER_WINDOW)


def test_local_ca_names_are_not_rate_limited():
    recent = [NOW - 1] * ORDERS_PER_WINDOW
    names = [Wanted(f"n{i}", limited=False) for i in range(20)]
    assert len(plan(names, {}, {}, [], recent, NOW).order) == 20


def test_local_names_do_not_use_up_the_acme_window():
    names = [*(Wanted(f"l{i}", limited=False) for i in range(10)), Wanted("a")]
    assert plan(names, {}, {}, [], [], NOW).order[-1] == "a"


def test_recent_starts_keeps_only_the_window():
    assert recent_starts([NOW - 61, NOW - 60, NOW - 59, NOW, NOW + 1], NOW) == [NOW - 59, NOW]
