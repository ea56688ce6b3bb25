"""How long can pass between two runs: the run interval, read from the stack's ScheduleExpression.

The state machine is started by an EventBridge schedule (template parameter
``ScheduleExpression``, given to every function as ``SCHEDULE_EXPRESSION``).
The lifecycle acts at the last run before each deadline (see
:mod:`keyrotation.policy`), so it needs the longest time that can pass between
two consecutive scheduled runs: the **run interval**. This module reads it
from the expression. Pure: no AWS call, no clock.

Two forms are understood, as EventBridge writes them (times in UTC):

- ``rate(N unit)``: every N minutes, hours or days (unit ``minute``, ``hour``
  or ``day`` when N is 1, else ``minutes``, ``hours`` or ``days``).
- ``cron(minutes hours day-of-month month day-of-week year)``: each of the
  first five fields is ``*``, a number, a range ``a-b``, a step (``*/n``,
  ``a/n``, ``a-b/n``) or a comma-separated list of these; month and
  day-of-week also take names (``JAN``-``DEC``, ``SUN``-``SAT``; day-of-week
  1 is Sunday). One of day-of-month and day-of-week is ``?``; year is ``*``.

:func:`first_run_at_or_after` gives the moment of the first run at or after a
given moment, for a ``cron(...)`` expression: the day a run acts on a date is
the day an owner is told. A ``rate(...)`` schedule's runs are counted from when
its rule was created, which no function knows: it has no answer (None).

Anything else (``L``, ``W`` or ``#``, a bounded year, a schedule that never
runs) raises :class:`~keyrotation.errors.InvalidConfiguration`, so a run
never guesses how often it runs.

Example:
    >>> run_interval("cron(0 6 * * ? *)")  # daily at 06:00, the template's default
    datetime.timedelta(days=1)
    >>> run_interval("cron(0 6 ? * MON-FRI *)")  # weekdays: Friday to Monday is the longest gap
    datetime.timedelta(days=3)
    >>> run_interval("cron(30 8,20 * * ? *)")
    datetime.timedelta(seconds=43200)
    >>> run_interval("rate(6 hours)")
    datetime.timedelta(seconds=21600)
    >>> first_run_at_or_after("cron(0 6 * * ? *)", datetime(2025, 12, 16, 3, 0, tzinfo=UTC))
    datetime.datetime(2025, 12, 16, 6, 0, tzinfo=datetime.timezone.utc)
    >>> first_run_at_or_after("cron(0 6 * * ? *)", datetime(2025, 12, 16, 6, 0, 1, tzinfo=UTC))
    datetime.datetime(2025, 12, 17, 6, 0, tzinfo=datetime.timezone.utc)
    >>> first_run_at_or_after("rate(1 day)", datetime(2025, 12, 16, tzinfo=UTC)) is None
    True
    >>> run_interval("cron(0 6 L * ? *)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keyrotation.errors.InvalidConfiguration: ScheduleExpression 'cron(0 6 L * ? *)': day-of-month 'L' is not ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

from keyrotation.errors import InvalidConfiguration

_RATE = re.compile(r"rate\(\s*([0-9]+)\s+([a-z]+)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_TERM = re.compile(r"(\*|[0-9A-Z]+(?:-[0-9A-Z]+)?)(?:/([0-9]+))?")
#: The Gregorian calendar repeats every 400 years (146,097 days, a whole number of weeks).
_CYCLE_START = date(2001, 1, 1)
_CYCLE_DAYS = 146_097
_ALL_MONTHS = frozenset(range(1, 13))
_ALL_DAYS_OF_MONTH = frozenset(range(1, 32))


@cache
def run_interval(expression: str) -> timedelta:
    """The longest time between two consecutive runs of ``expression`` (see the module's docstring)."""
    text = expression.strip()
    rate = _RATE.fullmatch(text)
    if rate:
        return _rate(text, int(rate.group(1)), rate.group(2))
    cron = _CRON.fullmatch(text)
    if cron:
        return _cron(text, cron.group(1).split())
    raise _invalid(text, "is neither rate(...) nor cron(...)")


def first_run_at_or_after(expression: str, moment: datetime) -> datetime | None:
    """The first run of a ``cron(...)`` ``expression`` at or after ``moment`` (UTC); None for ``rate(...)``.

    ``moment`` must be timezone-aware. Raises
    :class:`~keyrotation.errors.InvalidConfiguration` as :func:`run_interval` does.
    """
    text = expression.strip()
    if _RATE.fullmatch(text):
        run_interval(text)  # the same errors for a bad rate
        return None
    cron = _cron_fields(text)
    start = moment.astimezone(UTC)
    for offset in range(_CYCLE_DAYS + 1):
        day = start.date() + timedelta(days=offset)
        if cron.runs_on(day):
            for minute_of_day in cron.times:
                run = datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60), tzinfo=UTC)
                if run >= start:
                    return run
    raise _invalid(text, "it never runs")


@dataclass(frozen=True)
class _Cron:
    """A parsed ``cron(...)`` expression: the times of day (minutes after midnight) and the days it runs."""

    times: tuple[int, ...]
    months: frozenset[int]
    days_of_month: frozenset[int] | None
    days_of_week: frozenset[int] | None

    def runs_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.days_of_month is not None and day.day not in self.days_of_month:
            return False
        return self.days_of_week is None or day.isoweekday() % 7 + 1 in self.days_of_week  # Sunday is 1


@cache
def _cron_fields(expression: str) -> _Cron:
    cron = _CRON.fullmatch(expression)
    if not cron:
        raise _invalid(expression, "is neither rate(...) nor cron(...)")
    run_interval(expression)  # every check of the expression, once
    minutes_field, hours_field, dom_field, month_field, dow_field, _ = cron.group(1).split()
    minutes = _values(expression, "minutes", minutes_field, 0, 59)
    hours = _values(expression, "hours", hours_field, 0, 23)
    return _Cron(
        times=tuple(sorted(hour * 60 + minute for hour in hours for minute in minutes)),
        months=_values(expression, "month", month_field, 1, 12, _MONTHS),
        days_of_month=None if dom_field == "?" else _values(expression, "day-of-month", dom_field, 1, 31),
        days_of_week=None if dow_field == "?" else _values(expression, "day-of-week", dow_field, 1, 7, _WEEKDAYS),
    )


def _invalid(expression: str, why: str) -> InvalidConfiguration:
    return InvalidConfiguration(f"ScheduleExpression {expression!r}: {why}")


def _rate(expression: str, value: int, unit: str) -> timedelta:
    singular = unit.removesuffix("s")
    if value < 1 or singular not in _UNITS:
        raise _invalid(expression, "a rate is a whole number above 0 of minutes, hours or days")
    if (value == 1) != (unit == singular):
        raise _invalid(expression, f"write the unit {'singular' if value == 1 else 'plural'}, as EventBridge requires")
    return value * _UNITS[singular]


def _cron(expression: str, fields: list[str]) -> timedelta:
    if len(fields) != 6:
        raise _invalid(
            expression, "a cron expression has six fields: minutes hours day-of-month month day-of-week year"
        )
    minutes_field, hours_field, dom_field, month_field, dow_field, year_field = fields
    if year_field != "*":
        raise _invalid(expression, "only '*' is supported as the year (a schedule that ends has no run interval)")
    if (dom_field == "?") == (dow_field == "?"):
        raise _invalid(expression, "exactly one of day-of-month and day-of-week must be '?'")
    minutes = _values(expression, "minutes", minutes_field, 0, 59)
    hours = _values(expression, "hours", hours_field, 0, 23)
    months = _values(expression, "month", month_field, 1, 12, _MONTHS)
    days_of_month = None if dom_field == "?" else _values(expression, "day-of-month", dom_field, 1, 31)
    days_of_week = None if dow_field == "?" else _values(expression, "day-of-week", dow_field, 1, 7, _WEEKDAYS)
    times = sorted(hour * 60 + minute for hour in hours for minute in minutes)
    # Every month and every day of the month (or none, with days of the week): the days repeat every week.
    weekly = months == _ALL_MONTHS and days_of_month in (None, _ALL_DAYS_OF_MONTH)
    cycle = 7 if weekly else _CYCLE_DAYS
    run_days = _run_days(cycle, months, days_of_month, days_of_week)
    if not run_days:
        raise _invalid(expression, "it never runs")
    longest = max((later - earlier for earlier, later in zip(times, times[1:], strict=False)), default=0)
    following = [*run_days[1:], run_days[0] + cycle]
    longest_days = max(later - earlier for earlier, later in zip(run_days, following, strict=True))
    return timedelta(minutes=max(longest, longest_days * 24 * 60 + times[0] - times[-1]))


def _run_days(
    cycle: int, months: frozenset[int], days_of_month: frozenset[int] | None, days_of_week: frozenset[int] | None
) -> list[int]:
    """The days of one cycle of ``cycle`` days on which the schedule runs, as day numbers from its start."""
    found = []
    for offset in range(cycle):
        day = date.fromordinal(_CYCLE_START.toordinal() + offset)
        if day.month not in months:
            continue
        if days_of_month is not None and day.day not in days_of_month:
            continue
        if days_of_week is not None and day.isoweekday() % 7 + 1 not in days_of_week:  # Sunday is 1
            continue
        found.append(offset)
    return found


def _values(
    expression: str, name: str, field: str, low: int, high: int, names: list[str] | None = None
) -> frozenset[int]:
    """The values a cron field selects, each checked against ``low``..``high``."""
    selected: set[int] = set()
    for term in field.upper().split(","):
        match = _TERM.fullmatch(term)
        if not match:
            raise _invalid(expression, f"{name} {term!r} is not supported (use numbers, ranges, steps and lists)")
        span, step = match.group(1), match.group(2)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (_value(expression, name, part, low, high, names) for part in span.split("-"))
        else:
            first = _value(expression, name, span, low, high, names)
            last = high if step else first
        if first > last:
            raise _invalid(expression, f"{name} {term!r} is an empty range")
        every = int(step) if step else 1
        if every < 1:
            raise _invalid(expression, f"{name} {term!r} has a step of 0")
        selected.update(range(first, last + 1, every))
    return frozenset(selected)


def _value(expression: str, name: str, text: str, low: int, high: int, names: list[str] | None) -> int:
    if names and text in names:
        return low + names.index(text)
    if not text.isdigit() or not low <= int(text) <= high:
        raise _invalid(expression, f"{name} {text!r} is not supported (use numbers, ranges, steps and lists)")
    return int(text)
