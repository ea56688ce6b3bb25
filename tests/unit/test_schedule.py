"""The run interval: the longest gap between two runs of an EventBridge schedule expression.

Each expected gap is worked out by hand in the test's comment; a brute-force
count of the runs of two years, minute by minute where that is cheap, checks
the cron cases against an independent reading of the fields.
"""

from __future__ import annotations

import doctest
from datetime import datetime, timedelta

import pytest

import keyrotation.schedule as schedule
from keyrotation.errors import InvalidConfiguration
from keyrotation.schedule import run_interval
from localaws.defaults import parameter_defaults

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@pytest.mark.parametrize(
    ("expression", "gap"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 hour)", HOUR),
        ("rate(12 hours)", 12 * HOUR),
        ("rate(1 day)", DAY),
        ("rate(7 days)", 7 * DAY),
        (" rate( 2 days ) ", 2 * DAY),
        ("cron(0 6 * * ? *)", DAY),  # the template's default: daily at 06:00
        ("cron(0 6 * * ? *)".lower(), DAY),
        ("cron(15 6 ? * * *)", DAY),  # every day of the week instead of every day of the month
        ("cron(0 0/6 * * ? *)", 6 * HOUR),  # 00, 06, 12, 18
        ("cron(0 8,20 * * ? *)", 12 * HOUR),
        ("cron(0 2,3 * * ? *)", 23 * HOUR),  # 03:00 to 02:00 the next day
        ("cron(*/15 * * * ? *)", timedelta(minutes=15)),
        ("cron(0 9-17 ? * MON-FRI *)", 2 * DAY + 16 * HOUR),  # Friday 17:00 to Monday 09:00
        ("cron(0 6 ? * MON-FRI *)", 3 * DAY),
        ("cron(0 6 ? * 2-6 *)", 3 * DAY),  # the same days as numbers (1 is Sunday)
        ("cron(0 6 ? * SUN *)", 7 * DAY),
        ("cron(0 6 ? * 1,4 *)", 4 * DAY),  # Sunday and Wednesday: Wednesday to Sunday is 4 days
        ("cron(0 6 1 * ? *)", 31 * DAY),  # monthly: the longest month
        ("cron(0 6 1,15 * ? *)", 17 * DAY),  # 15 to 1 of the next month, after a 31-day month
        ("cron(0 6 31 * ? *)", 61 * DAY),  # 31 July to 31 August is 31 days, 31 Aug to 31 Oct is 61
        ("cron(0 6 * JAN-JUN ? *)", 185 * DAY),  # 30 June to 1 January
        ("cron(0 6 1 JAN,JUL ? *)", 184 * DAY),  # 1 July to 1 January
        ("cron(0 6 29 2 ? *)", 8 * 365 * DAY + DAY),  # leap days: 2096 to 2104 (2100 is not a leap year)
    ],
)
def test_the_longest_gap_between_two_runs(expression: str, gap: timedelta) -> None:
    assert run_interval(expression) == gap


def test_the_templates_default_runs_daily() -> None:
    assert run_interval(parameter_defaults()["ScheduleExpression"]) == DAY


@pytest.mark.parametrize(
    "expression",
    ["cron(0 6 * * ? *)", "cron(0 9-17 ? * MON-FRI *)", "cron(30 */7 1,10,20 * ? *)", "cron(5 4 1,15 JAN,MAR ? *)"],
)
def test_the_cron_gap_agrees_with_counting_every_run_of_two_years(expression: str) -> None:
    minutes_field, hours_field, dom, month, dow, _ = expression.removeprefix("cron(").removesuffix(")").split()
    moments = _every_five_minutes(2024, 2026)
    runs = [moment for moment in moments if _fires(moment, minutes_field, hours_field, dom, month, dow)]
    longest = max(later - earlier for earlier, later in zip(runs, runs[1:], strict=False))
    assert longest == run_interval(expression)  # these four repeat every year: two years hold their longest gap


def _every_five_minutes(first_year: int, end_year: int) -> list[datetime]:
    """Every fifth minute of the years given (every minute field of these tests is a multiple of 5)."""
    moment, end, found = datetime(first_year, 1, 1), datetime(end_year, 1, 1), []
    while moment < end:
        found.append(moment)
        moment += timedelta(minutes=5)
    return found


def _fires(moment: datetime, minutes: str, hours: str, dom: str, month: str, dow: str) -> bool:
    """An independent, plain reading of the fields used above."""
    weekdays = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
    months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    aws_weekday = (moment.isoweekday() % 7) + 1  # Sunday 1 ... Saturday 7

    def matches(field: str, value: int, low: int, names: list[str] | None = None) -> bool:
        if field in ("*", "?"):
            return True
        for term in field.split(","):
            step = 1
            if "/" in term:
                term, raw_step = term.split("/")
                step = int(raw_step)
            if term == "*":
                first, last = low, 59
            elif "-" in term:
                a, b = term.split("-")
                first = low + names.index(a) if names and a in names else int(a)
                last = low + names.index(b) if names and b in names else int(b)
            else:
                first = low + names.index(term) if names and term in names else int(term)
                last = first if step == 1 else 59
            if first <= value <= last and (value - first) % step == 0:
                return True
        return False

    return (
        matches(minutes, moment.minute, 0)
        and matches(hours, moment.hour, 0)
        and matches(dom, moment.day, 1)
        and matches(month, moment.month, 1, months)
        and matches(dow, aws_weekday, 1, weekdays)
    )


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "is neither rate"),
        ("at(2030-01-01T00:00:00)", "is neither rate"),
        ("rate(0 days)", "a whole number above 0"),
        ("rate(1 days)", "write the unit singular"),
        ("rate(2 day)", "write the unit plural"),
        ("rate(1 week)", "minutes, hours or days"),
        ("rate(1.5 hours)", "is neither rate"),
        ("cron(0 6 * * ?)", "six fields"),
        ("cron(0 6 * * ? 2030)", "only '\\*' is supported as the year"),
        ("cron(0 6 * * * *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 6 ? * ? *)", "exactly one of day-of-month and day-of-week"),
        ("cron(0 6 L * ? *)", "day-of-month 'L' is not supported"),
        ("cron(0 6 15W * ? *)", "day-of-month '15W' is not supported"),
        ("cron(0 6 ? * 6#3 *)", "day-of-week '6#3' is not supported"),
        ("cron(0 6 ? * 6L *)", "day-of-week '6L' is not supported"),
        ("cron(60 6 * * ? *)", "minutes '60' is not supported"),
        ("cron(0 24 * * ? *)", "hours '24' is not supported"),
        ("cron(0 6 0 * ? *)", "day-of-month '0' is not supported"),
        ("cron(0 6 * 13 ? *)", "month '13' is not supported"),
        ("cron(0 6 ? * 8 *)", "day-of-week '8' is not supported"),
        ("cron(0 6 ? * FRI-MON *)", "day-of-week 'FRI-MON' is an empty range"),
        ("cron(0 */0 * * ? *)", "hours '\\*/0' has a step of 0"),
        ("cron(0 6 30 2 ? *)", "it never runs"),
    ],
)
def test_an_expression_the_product_cannot_read_is_a_configuration_error(expression: str, message: str) -> None:
    with pytest.raises(InvalidConfiguration, match=message):
        run_interval(expression)


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(schedule, optionflags=doctest.ELLIPSIS)
    assert tried >= 5 and failures == 0
