"""Hypothesis profiles for the unit tests.

``ci`` (the default) is deterministic: the same examples on every machine and
every run, no example database, no per-example deadline (shared CI runners
are slow and noisy). Pick another profile with ``HYPOTHESIS_PROFILE=dev``
(random examples, more of them) when hunting for new counterexamples.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=300,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
