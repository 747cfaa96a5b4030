"""Cron expressions: parsing, errors with what is wrong, and the next fire time."""

from __future__ import annotations

import time
from datetime import datetime

import pytest

from wharf.config.cron import parse_cron


def nxt(expr: str, after: str) -> str:
    return parse_cron(expr).next_after(datetime.fromisoformat(after)).isoformat(" ", "minutes")


@pytest.mark.parametrize(("expr", "after", "expected"), [
    ("0 4 * * *", "2026-03-01 03:59", "2026-03-01 04:00"),
    ("0 4 * * *", "2026-03-01 04:00", "2026-03-02 04:00"),  # strictly after
    ("0 4 * * *", "2026-12-31 05:00", "2027-01-01 04:00"),
    ("*/15 * * * *", "2026-03-01 10:07", "2026-03-01 10:15"),
    ("* * * * *", "2026-03-01 10:07:59", "2026-03-01 10:08"),
    ("30 9-17/4 * * *", "2026-03-01 09:31", "2026-03-01 13:30"),
    ("0 0 * * mon", "2026-03-01 00:00", "2026-03-02 00:00"),  # 2026-03-01 is a Sunday
    ("0 0 * * 7", "2026-03-01 00:00", "2026-03-08 00:00"),  # 7 is Sunday too
    ("0 0 * * 0", "2026-02-28 12:00", "2026-03-01 00:00"),
    ("0 12 1 * fri", "2026-03-01 13:00", "2026-03-06 12:00"),  # day OR weekday (Vixie)
    ("0 0 29 feb *", "2026-01-01 00:00", "2028-02-29 00:00"),
    ("0 0 1 jan,jul *", "2026-02-01 00:00", "2026-07-01 00:00"),
    ("@hourly", "2026-03-01 10:07", "2026-03-01 11:00"),
    ("@daily", "2026-03-01 10:07", "2026-03-02 00:00"),
    ("@weekly", "2026-03-02 10:07", "2026-03-08 00:00"),
    ("@monthly", "2026-03-02 10:07", "2026-04-01 00:00"),
    ("@yearly", "2026-03-02 10:07", "2027-01-01 00:00"),
    ("5,10-12 * * * *", "2026-03-01 10:10", "2026-03-01 10:11"),
    ("5/20 * * * *", "2026-03-01 10:26", "2026-03-01 10:45"),
])
def test_next_fire(expr, after, expected):
    assert nxt(expr, after) == expected


def test_a_day_field_led_by_a_star_restricts_together_with_the_weekday():
    # Vixie cron: "*/2" starts with "*", so day AND weekday: odd days that are Fridays.
    assert nxt("0 12 */2 * fri", "2026-03-01 13:00") == "2026-03-13 12:00"


@pytest.mark.parametrize(("expr", "message"), [
    ("0 4 * *", "must have 5 fields"),
    ("61 * * * *", "minute: '61' is not a number 0-59"),
    ("* 24 * * *", "hour: '24'"),
    ("* * 0 * *", "day of month: '0'"),
    ("* * * 13 *", "month: '13' is not a number 1-12 or a name (jan"),
    ("* * * * 8", "day of week: '8'"),
    ("*/0 * * * *", "bad step '0'"),
    ("10-5 * * * *", "runs backwards"),
    ("x * * * *", "minute: 'x'"),
    ("@often", "unknown shortcut"),
    ("0 0 30 feb *", "never fires"),
    (5, "must be a cron expression"),
    ("", "must be a cron expression"),
])
def test_bad_expressions_say_what_is_wrong(expr, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        parse_cron(expr)


def test_next_time_is_local_time(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        schedule = parse_cron("0 4 * * *")
        now = time.mktime((2026, 6, 1, 12, 0, 0, 0, 0, -1))
        fire = time.localtime(schedule.next_time(now))
        assert (fire.tm_mday, fire.tm_hour, fire.tm_min) == (2, 4, 0)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_wall_time_repeated_by_dst_fires_once(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")  # 2026-11-01 02:00 EDT -> 01:00 EST
    time.tzset()
    try:
        schedule = parse_cron("30 1 * * *")
        first = schedule.next_time(time.mktime((2026, 11, 1, 0, 0, 0, 0, 0, -1)))
        second = schedule.next_time(first)
        assert second - first > 20 * 3600  # the next day's, not the repeated 01:30
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_str_is_the_expression_as_written():
    assert str(parse_cron(" 0 4 * * * ")) == "0 4 * * *"
