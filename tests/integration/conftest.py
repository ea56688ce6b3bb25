"""Integration tests: template.yaml deployed into moto, each handler invoked in process as Lambda would.

The leak check of tests/leaks.py runs at the end of each test (autouse), as in tests/statemachine/.
"""

from __future__ import annotations

from tests.leaks import leak_check  # noqa: F401 - the autouse fixture, for every test of this folder
