"""Expand each statemachine/*.asl.yaml into the .asl.json beside it, the file template.yaml deploys.

    make asl                                        # or: .venv/bin/python scripts/build_asl.py
    .venv/bin/python scripts/build_asl.py --check   # exit 1 if a JSON is not what its YAML makes

The YAML is the Amazon States Language written in YAML, plus one block that is not ASL:
``RetryPolicies``, named retriers that the states refer to with YAML aliases::

    RetryPolicies:
      lambda: &lambda {ErrorEquals: [KeyRotation.Throttled], IntervalSeconds: 2, MaxAttempts: 6}
    States:
      AuditKeys: {Type: Task, ..., Retry: [*lambda]}

``yaml.safe_load`` resolves the aliases and the block is left out, so SAM, cfn-lint, statelint and
moto all read plain ASL JSON. So that each policy stays said once, the source is refused when a
state writes out a declared policy instead of its alias, when the same retrier is written out twice,
or when a declared policy is used nowhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STATEMACHINE = ROOT / "statemachine"
POLICIES = "RetryPolicies"
ASL_FIELDS = {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"}


class SourceError(ValueError):
    """The YAML is not ASL plus a RetryPolicies block, or says a retry policy more than once."""


def target(source: Path) -> Path:
    """``rotation.asl.yaml`` -> ``rotation.asl.json``, beside it."""
    return source.with_name(source.name.removesuffix(".yaml") + ".json")


def expand(text: str, name: str = "<yaml>") -> dict[str, Any]:
    """The ASL document the YAML describes: aliases resolved, ``RetryPolicies`` left out.

    >>> source = '''
    ... RetryPolicies:
    ...   lambda: &lambda {ErrorEquals: [KeyRotation.Throttled], MaxAttempts: 3}
    ... StartAt: A
    ... States:
    ...   A: {Type: Task, Resource: "${F}", Retry: [*lambda], End: true}
    ... '''
    >>> expand(source)["States"]["A"]["Retry"]
    [{'ErrorEquals': ['KeyRotation.Throttled'], 'MaxAttempts': 3}]
    """
    document = yaml.safe_load(text)
    if not isinstance(document, dict) or not isinstance(document.get("States"), dict):
        raise SourceError(f"{name}: not a state machine (a mapping with States)")
    policies = document.pop(POLICIES, {})
    if not isinstance(policies, dict) or not all(isinstance(policy, dict) for policy in policies.values()):
        raise SourceError(f"{name}: {POLICIES} must map names to retriers")
    unknown = sorted(set(document) - ASL_FIELDS)
    if unknown:
        raise SourceError(f"{name}: top-level fields that are not ASL: {unknown}")
    _check_each_policy_said_once(name, policies, list(retriers(document["States"])))
    return document


def retriers(states: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every retrier of every state, nested ones included (Map ItemProcessor/Iterator, Parallel Branches)."""
    for state_name, state in states.items():
        where = f"{path}{state_name}"
        for retrier in state.get("Retry", []):
            yield where, retrier
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from retriers(state[key]["States"], f"{where}.")
        for branch in state.get("Branches", []):
            yield from retriers(branch["States"], f"{where}.")


def _check_each_policy_said_once(
    name: str, policies: dict[str, dict[str, Any]], used: list[tuple[str, dict[str, Any]]]
) -> None:
    problems = []
    for policy_name, policy in policies.items():
        if not any(retrier is policy for _, retrier in used):
            problems.append(f"{POLICIES}.{policy_name} is used by no state")
    written_out: list[tuple[str, dict[str, Any]]] = []
    for state, retrier in used:
        if any(retrier is policy for policy in policies.values()):
            continue
        same = [policy_name for policy_name, policy in policies.items() if policy == retrier]
        if same:
            problems.append(f"{state} writes out {POLICIES}.{same[0]}: use its alias, *{same[0]}")
        twin = next((other for other, earlier in written_out if earlier == retrier), None)
        if twin is not None:
            problems.append(f"{state} repeats a retrier of {twin}: declare it once in {POLICIES}")
        written_out.append((state, retrier))
    if problems:
        raise SourceError(f"{name}: " + "; ".join(problems))


def render(source: Path) -> str:
    """The JSON text the YAML file makes (2-space indent, a final newline)."""
    return json.dumps(expand(source.read_text(), source.name), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a JSON is out of date")
    arguments = parser.parse_args(argv)
    sources = sorted(STATEMACHINE.glob("*.asl.yaml"))
    if not sources:
        print(f"no *.asl.yaml in {STATEMACHINE}", file=sys.stderr)
        return 1
    orphans = [path.name for path in STATEMACHINE.glob("*.asl.json") if path.with_suffix(".yaml") not in sources]
    if orphans:
        print(f"{orphans}: no .asl.yaml source beside them (write the YAML, or delete the JSON)", file=sys.stderr)
        return 1
    stale = []
    for source in sources:
        text, json_path = render(source), target(source)
        lines = f"{len(source.read_text().splitlines())} lines of YAML, {len(text.splitlines())} of JSON"
        if json_path.is_file() and json_path.read_text() == text:
            print(f"{json_path.relative_to(ROOT)} is up to date ({lines})")
        elif arguments.check:
            stale.append(json_path.name)
        else:
            json_path.write_text(text)
            print(f"wrote {json_path.relative_to(ROOT)} from {source.name} ({lines})")
    if stale:
        print(f"{stale}: not what their .asl.yaml makes; run `make asl`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
