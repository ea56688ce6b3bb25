"""The Jinja environment every email template renders in, and the filters templates may use.

Sandboxed (an override is code from a bucket and gets no access to Python
internals, nor makes a string or number over the size limit with ``*`` or
``**``), strict (an unknown variable is an error, not an empty string) and
autoescaped for ``*.html.j2`` only. Two filters: ``day`` and ``moment``.

Example:
    >>> from jinja2 import DictLoader
    >>> environment = template_environment(DictLoader({"x.html.j2": "{{ name }} on {{ when | day }}"}))
    >>> environment.get_template("x.html.j2").render(name="<b>", when=date(2026, 2, 7))
    '&lt;b&gt; on 2026-02-07 (Saturday)'
"""

from __future__ import annotations

from datetime import date, datetime

from jinja2 import BaseLoader, Environment, StrictUndefined, select_autoescape

from keyrotation import clock
from keyrotation.notifications.render_limits import BoundedEnvironment


def format_day(value: date | datetime | None) -> str:
    """A calendar day as people read it (the ``day`` filter).

    >>> format_day(date(2026, 2, 7))
    '2026-02-07 (Saturday)'
    >>> format_day(None)
    'unknown'
    """
    if value is None:
        return "unknown"
    day = value.date() if isinstance(value, datetime) else value
    return f"{day.isoformat()} ({day.strftime('%A')})"


def format_moment(value: datetime | None) -> str:
    """A moment in UTC, to the minute (the ``moment`` filter).

    >>> from datetime import UTC
    >>> format_moment(datetime(2026, 1, 2, 10, 5, 59, tzinfo=UTC))
    '2026-01-02 10:05 UTC'
    """
    if value is None:
        return "unknown"
    return clock.to_iso(value)[:16].replace("T", " ") + " UTC"


def template_environment(loader: BaseLoader) -> Environment:
    """A sandboxed environment: overrides are code from a bucket, and get no access to Python internals."""
    environment = BoundedEnvironment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["day"] = format_day
    environment.filters["moment"] = format_moment
    return environment
