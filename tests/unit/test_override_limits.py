"""An S3 override whose rendering is too large or too slow falls back to the packaged template, reported.

A rendering over MAX_OVERRIDE_BYTES (each part of an email, so an email stays under 1 MB; SES refuses
over 10 MB) or MAX_OVERRIDE_SECONDS is stopped where it is and replaced by the packaged template, like
a broken override: the fallback is listed with the email (``templateFallbacks``) and in the run report.
"""

from __future__ import annotations

import time

import pytest

from keyrotation.notifications.render_limits import MAX_OVERRIDE_BYTES, MAX_OVERRIDE_SECONDS
from tests.unit.test_notifications import GUIDE, PACKAGED, full_digest, renderer_with

HUGE = "{% for i in range(100000) %}{{ 'x' * 120 }}{% endfor %}"  # 12 MB, in 100,000 small pieces
ENDLESS = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"  # no output, 10^10 steps


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        (HUGE, f"larger than {MAX_OVERRIDE_BYTES // 1024} KiB"),
        ("{{ 'x' * 12000000 }}", f"larger than {MAX_OVERRIDE_BYTES // 1024} KiB"),  # one operation
        ("{{ ('x' * 1000) * 12000 }}", f"larger than {MAX_OVERRIDE_BYTES // 1024} KiB"),
        ("{{ 10 ** 100000000 }}", "too large a number"),
        (ENDLESS, f"longer than {MAX_OVERRIDE_SECONDS:g} s"),
    ],
)
def test_an_override_too_large_or_too_slow_falls_back_to_the_packaged_template(override: str, reason: str) -> None:
    renderer, _ = renderer_with({"digest.html.j2": override})
    started = time.monotonic()
    rendered = renderer.render_digest(full_digest(), GUIDE)
    assert time.monotonic() - started < MAX_OVERRIDE_SECONDS + 5
    assert rendered.html == PACKAGED.render_digest(full_digest(), GUIDE).html
    (fallback,) = [f for f in rendered.fallbacks if f.template == "digest.html.j2"]
    assert reason in fallback.reason, fallback


def test_an_override_of_ordinary_size_is_used() -> None:
    renderer, _ = renderer_with({"digest.txt.j2": "{% for i in range(1000) %}{{ 'x' * 100 }}{% endfor %}"})
    rendered = renderer.render_digest(full_digest(), GUIDE)
    assert rendered.text == "x" * 100_000
    assert not [f for f in rendered.fallbacks if f.template == "digest.txt.j2"]
