"""The state-machine tests: the leak check of tests/leaks.py runs at the end of each (autouse), and the
two long simulations are started first."""

from __future__ import annotations

import pytest

from tests.leaks import leak_check  # noqa: F401 - the autouse fixture, for every test of this folder

LONG_SIMULATIONS = ("test_simulation.py", "test_daily_schedule.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The two long simulations (a year of runs, 210 daily runs) go first, so that with ``-n 2`` each worker starts
    with one of them and the rest is shared out after."""
    items.sort(key=lambda item: not any(name in item.nodeid for name in LONG_SIMULATIONS))
