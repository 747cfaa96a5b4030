"""Cron expressions (`cron_restart = "0 4 * * *"`): parsed once, asked for the next time.

Theory of operation: the five fields of crontab(5) - minute, hour, day of month, month, day of
week - each become the set of values they allow. `*`, `a-b`, `*/n`, `a-b/n`, `a/n` and lists
of these are understood, with month and weekday names (`jan`, `mon`) and 7 as Sunday, and the
shortcuts `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
As in Vixie cron, when both day of month and day of week are restricted (neither starts with
`*`), a day matching either one fires.

Times are local wall-clock times, as in crontab. `next_after` works on naive datetimes and is
pure; `next_time` converts from and to epoch seconds with the machine's time zone. Around a
daylight-saving change a wall time that does not exist fires at the first minute after the gap
(mktime's reading), and one that occurs twice fires once.

Why our own parser: croniter, the usual choice, changed hands after its maintainer stopped in
2024, and what Wharf needs is one page of code that its tests cover entirely.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SHORTCUTS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
              "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
              "@annually": "0 0 1 1 *"}
# (name, lowest, highest, names for lowest onwards)
_FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
           ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
# The furthest a match can be: Feb 29 on a given weekday recurs within 28 years.
_SEARCH_YEARS = 29


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression: the values each field allows."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is `*`
    any_weekday: bool  # day of week is `*`

    def __str__(self) -> str:
        return self.text

    def day_matches(self, moment: datetime) -> bool:
        """Whether the day of `moment` is one the expression allows (Vixie cron's OR)."""
        in_days = moment.day in self.days
        in_weekdays = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_days and in_weekdays
        return in_days or in_weekdays

    def next_after(self, moment: datetime) -> datetime:
        """The first matching minute strictly after `moment` (naive local time)."""
        t = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = moment + timedelta(days=366 * _SEARCH_YEARS)
        while t <= limit:
            if t.month not in self.months:
                t = _first_of_next_month(t)
            elif not self.day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise ValueError(f"{self.text!r} never fires")  # e.g. "0 0 31 2 *"

    def next_time(self, now: float) -> float:
        """The epoch time of the next fire after epoch time `now`, in local time."""
        local = datetime.fromtimestamp(now)
        fire = self.next_after(local)
        at = time.mktime(fire.timetuple())
        while at <= now:  # a wall time repeated by a DST change: it has fired already
            fire = self.next_after(fire)
            at = time.mktime(fire.timetuple())
        return at


def _first_of_next_month(t: datetime) -> datetime:
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return t.replace(year=year, month=month, day=1, hour=0, minute=0)


def parse_cron(value: object) -> CronSchedule:
    """A converter: a 5-field cron expression or a shortcut; ValueError saying what is wrong."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a cron expression like \"0 4 * * *\", got {value!r}")
    text = value.strip()
    expanded = _SHORTCUTS.get(text.lower(), text)
    if expanded.startswith("@"):
        raise ValueError(f"unknown shortcut {text!r} (known: {', '.join(_SHORTCUTS)})")
    parts = expanded.split()
    if len(parts) != 5:
        raise ValueError(f"must have 5 fields (minute hour day-of-month month day-of-week), "
                         f"got {len(parts)} in {text!r}")
    sets = [_parse_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    schedule = CronSchedule(text, sets[0], sets[1], sets[2], sets[3], weekdays,
                            any_day=parts[2].startswith("*"),
                            any_weekday=parts[4].startswith("*"))
    schedule.next_after(datetime(2000, 1, 1))  # "0 0 30 2 *" is well formed but never fires
    return schedule


def _parse_field(text: str, name: str, low: int, high: int,
                 names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{name}: bad step {step_text!r} in {item!r}")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        else:
            start, dash, end = span.partition("-")
            first = _value(start, name, low, high, names)
            last = _value(end, name, low, high, names) if dash else (high if slash else first)
            if last < first:
                raise ValueError(f"{name}: range {span!r} runs backwards")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> int:
    lowered = text.lower()
    if lowered in names:
        return low + names.index(lowered)
    if not text.isdigit() or not low <= int(text) <= high:
        known = f" or a name ({', '.join(names)})" if names else ""
        raise ValueError(f"{name}: {text!r} is not a number {low}-{high}{known}")
    return int(text)
