"""Reading CloudFormation/SAM templates: YAML with short-form tags, parameters, intrinsic functions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent


class TemplateError(ValueError):
    """A template or a parameter value that CloudFormation would refuse."""


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _tag)


def load(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return dict(yaml.load(handle, Loader=_Loader))  # noqa: S506  # a SafeLoader subclass  # nosec B506


def validate_parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Parameter values as CloudFormation would accept them; raise :class:`TemplateError` otherwise."""
    declared = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise TemplateError(f"Parameters: {unknown} do not exist in the template")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in given:
            value = str(given[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"Parameters: [{name}] must have values")
        _check_parameter(name, spec, value)
        values[name] = value
    return values


def _check_parameter(name: str, spec: Mapping[str, Any], value: str) -> None:
    def fail(why: str) -> TemplateError:
        return TemplateError(
            f"Parameter '{name}' {why}"
            + (f": {spec['ConstraintDescription']}" if "ConstraintDescription" in spec else "")
        )

    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise fail(f"must be a number, got {value!r}") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise fail(f"must be a number not less than {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise fail(f"must be a number not greater than {spec['MaxValue']}")
    if "AllowedValues" in spec and value not in [str(allowed) for allowed in spec["AllowedValues"]]:
        raise fail(f"value {value!r} is not one of {spec['AllowedValues']}")
    # A CommaDelimitedList's pattern applies to each of its values.
    values = value.split(",") if spec.get("Type") == "CommaDelimitedList" else [value]
    if "AllowedPattern" in spec and not all(re.fullmatch(spec["AllowedPattern"], item) for item in values):
        raise fail(f"failed to satisfy constraint: must match pattern {spec['AllowedPattern']}")


@dataclass
class Resolver:
    """Evaluates intrinsic functions against parameters and deployed resources."""

    parameters: dict[str, str]
    pseudo: dict[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    conditions: dict[str, bool] = field(default_factory=dict)
    list_parameters: frozenset[str] = frozenset()  # CommaDelimitedList parameters: a Ref gives a list

    @classmethod
    def for_template(cls, template: Mapping[str, Any], parameters: dict[str, str], pseudo: dict[str, str]) -> Resolver:
        declared = template.get("Parameters", {})
        lists = frozenset(name for name, spec in declared.items() if spec.get("Type") == "CommaDelimitedList")
        resolver = cls(parameters=parameters, pseudo=pseudo, list_parameters=lists)
        resolver.evaluate_conditions(template.get("Conditions", {}))
        return resolver

    def evaluate_conditions(self, declared: Mapping[str, Any]) -> None:
        for name, expression in declared.items():
            self.conditions[name] = bool(self.resolve(expression))

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [value for value in (self.resolve(item) for item in node) if value is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            function = _FUNCTIONS.get(key)
            if function is not None:
                return function(self, value)
            if key == "Condition" and isinstance(value, str) and value in self.conditions:
                return self.conditions[value]
        return {
            key: resolved
            for key, resolved in ((k, self.resolve(v)) for k, v in node.items())
            if resolved is not _NO_VALUE
        }

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.list_parameters:
            return [item.strip() for item in self.parameters[name].split(",")] if self.parameters[name] else []
        for source in (self.parameters, self.pseudo, self.refs):
            if name in source:
                return source[name]
        raise TemplateError(f"unresolved Ref {name}")

    def get_att(self, value: list[str]) -> str:
        resource, attribute = value
        try:
            return self.attributes[(resource, attribute)]
        except KeyError:
            raise TemplateError(f"unresolved GetAtt {resource}.{attribute}") from None

    def sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return self.get_att(name.split(".", 1))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


class _NoValue:
    pass


_NO_VALUE = _NoValue()

_FUNCTIONS: dict[str, Any] = {
    "Ref": lambda r, v: r.ref(v),
    "Fn::GetAtt": lambda r, v: r.get_att(v),
    "Fn::Sub": lambda r, v: r.sub(v),
    "Fn::If": lambda r, v: r.resolve(v[1] if r.conditions[v[0]] else v[2]),
    "Fn::Equals": lambda r, v: str(r.resolve(v[0])) == str(r.resolve(v[1])),
    "Fn::Not": lambda r, v: not r.resolve(v[0]),
    "Fn::And": lambda r, v: all(r.resolve(x) for x in v),
    "Fn::Or": lambda r, v: any(r.resolve(x) for x in v),
    "Fn::Join": lambda r, v: str(v[0]).join(str(x) for x in r.resolve(v[1])),
    "Fn::Split": lambda r, v: str(r.resolve(v[1])).split(v[0]),
    "Fn::Select": lambda r, v: r.resolve(v[1])[int(r.resolve(v[0]))],
}


def merge_globals(template: Mapping[str, Any], resource_type: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals: scalars are overridden, maps merged, lists concatenated (globals first)."""
    section = {"AWS::Serverless::Function": "Function", "AWS::Serverless::StateMachine": "StateMachine"}.get(
        resource_type
    )
    defaults = template.get("Globals", {}).get(section, {}) if section else {}
    return _merge(defaults, properties)


def _merge(defaults: Any, local: Any) -> Any:
    if isinstance(defaults, dict) and isinstance(local, dict):
        if len(local) == 1 and next(iter(local)).startswith(("Fn::", "Ref")):
            return local
        merged = dict(defaults)
        for key, value in local.items():
            merged[key] = _merge(defaults[key], value) if key in defaults else value
        return merged
    if isinstance(defaults, list) and isinstance(local, list):
        return defaults + local
    return local
