"""The examples of the modules that check settings and input (issue 12) hold, and the checks' bounds."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from keyrotation import limits, organization, settings_check


@pytest.mark.parametrize("module", [settings_check, limits, organization], ids=lambda module: module.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert tried >= 1 and failures == 0
