"""The stack's default settings, read from template.yaml: the one place they are written.

Tests that need "the defaults" take them from here, never from a copy of the
numbers, so a changed default in the template is what every test then checks.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from keyrotation.config import LifecycleConfig
from localaws import cfn

TEMPLATE = cfn.REPO / "template.yaml"


@cache
def _template() -> dict[str, Any]:
    return cfn.load(TEMPLATE)


def parameter_defaults() -> dict[str, str]:
    """Every parameter's Default, as CloudFormation would pass it."""
    return cfn.validate_parameters(_template(), {})


def function_environment(logical_id: str) -> dict[str, str]:
    """The variables the template sets on a function from its parameters, with their defaults.

    Variables that name other resources (the ledger table, the run bucket) are
    left out: they exist only in a deployed stack.
    """
    template = _template()
    resource = template["Resources"][logical_id]
    properties = cfn.merge_globals(template, resource["Type"], resource.get("Properties", {}))
    variables = properties.get("Environment", {}).get("Variables", {})
    defaults = parameter_defaults()
    return {
        name: defaults[value["Ref"]]
        for name, value in variables.items()
        if isinstance(value, dict) and value.get("Ref") in defaults
    }


def default_lifecycle(**changes: Any) -> LifecycleConfig:
    """The schedule the template deploys by default, with ``changes`` (field=value) applied.

    A ``run_interval`` given without a ``schedule_expression`` is a schedule of that interval whose run
    times are not known (as with a ``rate(...)`` expression): the default expression no longer applies.
    """
    if "run_interval" in changes:
        changes.setdefault("schedule_expression", "")
    return replace(_default_lifecycle(), **changes)


@cache
def _default_lifecycle() -> LifecycleConfig:
    return LifecycleConfig.from_env(function_environment("AuditKeysFunction"))
