"""The templates and the state machine definition pass the linters AWS publishes for them.

* cfn-lint on template.yaml, member-account/role.yaml and security/organization-policies.yaml
  (from this venv);
* ``sam validate --lint`` on the three (aws-sam-cli lives in .venv-sam: it pins its own boto3);
* statelint on every statemachine/*.asl.json.

No test skips itself: the Makefile installs every tool, and a missing one is a failure
that says how to get it.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localaws import cfn

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "template.yaml"
MEMBER_ROLE = REPO / "member-account" / "role.yaml"
ORGANIZATION_POLICIES = REPO / "security" / "organization-policies.yaml"
TEMPLATES = [TEMPLATE, MEMBER_ROLE, ORGANIZATION_POLICIES]
ASL_FILES = sorted((REPO / "statemachine").glob("*.asl.json"))
DEFAULT_SAM = REPO / ".venv-sam" / "bin" / "sam"
TIMEOUT = 300


def sam_cli() -> Path:
    """The SAM CLI the Makefile installs: $SAM_CLI, else .venv-sam/bin/sam in this repo."""
    configured = os.environ.get("SAM_CLI")
    sam = Path(configured) if configured else DEFAULT_SAM
    if not sam.is_file() or not os.access(sam, os.X_OK):
        pytest.fail(
            f"SAM CLI not found at {sam} ({'$SAM_CLI' if configured else 'default location'}). "
            "Run `make sam-venv` (aws-sam-cli in its own virtualenv, requirements-sam.txt), "
            "or point SAM_CLI at a sam executable; `make test` does both.",
            pytrace=False,
        )
    return sam


def venv_tool(name: str) -> Path:
    """A console script installed beside this interpreter (.venv/bin), from requirements-dev.txt."""
    tool = Path(sys.executable).parent / name
    if not tool.is_file():
        pytest.fail(f"{name} is not installed at {tool}: run `make venv` (requirements-dev.txt)", pytrace=False)
    return tool


def offline_env(**extra: str) -> dict[str, str]:
    """Environment for an AWS tool that must never reach AWS: a region, fake credentials, no telemetry."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        SAM_CLI_TELEMETRY="0",
    )
    env.update(extra)
    return env


def run(command: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        **kwargs,
    )


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(result.args)}\nexit code {result.returncode}\n{result.stdout}{result.stderr}"


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


# ---------------------------------------------------------------- cfn-lint


@pytest.mark.parametrize("template", TEMPLATES, ids=rel)
def test_cfn_lint(template: Path) -> None:
    # cfn-lint's default rules: errors and warnings both exit non-zero. A warning that is a
    # false positive is suppressed on its one resource (Metadata: cfn-lint: config:
    # ignore_checks) with a comment saying why, never here.
    result = run([venv_tool("cfn-lint"), "--format", "parseable", "--", rel(template)], env=offline_env())
    assert result.returncode == 0, report(result)


# ---------------------------------------------------------------- sam validate --lint


@pytest.mark.parametrize("template", TEMPLATES, ids=rel)
def test_sam_validate_lint(template: Path) -> None:
    sam = sam_cli()
    result = run([sam, "validate", "--lint", "--template-file", rel(template)], env=offline_env())
    assert result.returncode == 0, report(result)
    assert "is a valid SAM Template" in result.stdout, report(result)


# ---------------------------------------------------------------- statelint

# statelint 3.1.0 lags the Amazon States Language in three places, all in the Distributed Map.
# Each such field is checked here against the States Language documentation, then left out of
# the copy statelint reads, so that everything else is still linted with no --ignore at all:
#   * Map "Label" (Distributed Map only): statelint does not know the field.
#   * ItemReader.ReaderConfig "InputType": statelint does not know the field, and Step Functions
#     requires it to read a JSON/CSV/JSONL/Parquet object with s3:getObject.
#   * "ToleratedFailurePercentage": statelint wants an integer; the States Language takes any
#     number from 0 to 100 (UpdateMapRun's toleratedFailurePercentage is a float), so 100.0 is valid.
# The ${...} DefinitionSubstitutions are replaced by values of the shape CloudFormation puts
# there (Lambda ARNs, a table name), which is why --ignore=URI is not needed either.
READER_INPUT_TYPES = {"CSV", "JSON", "JSONL", "MANIFEST", "PARQUET"}
LABEL = re.compile(r"[^\s?*<>{}\[\]:;,\\|^~$#%&`\"\x00-\x1f\x7f-\x9f]{1,40}")


def substituted_definition(text: str, substitutions: dict[str, Any]) -> str:
    def value(name: str) -> str:
        assert name in substitutions, f"${{{name}}} has no DefinitionSubstitutions entry"
        expression = substitutions[name]
        target = expression.get("Fn::GetAtt") if isinstance(expression, dict) else None
        if target and target[1] == "Arn":
            return f"arn:aws:lambda:us-east-1:123456789012:function:iam-key-rotation-{target[0]}-ABCDEF123456"
        return f"iam-key-rotation-{name}-ABCDEF123456"

    return re.sub(r"\$\{([^}]+)\}", lambda match: value(match.group(1)), text)


def without_known_statelint_gaps(node: Any, path: str, checked: list[str]) -> Any:
    """A copy of the definition without the fields statelint does not know, each checked here first."""
    if isinstance(node, list):
        return [without_known_statelint_gaps(item, f"{path}[{index}]", checked) for index, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    node = copy.copy(node)
    if node.get("Type") == "Map":
        distributed = node.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
        if "Label" in node:
            assert distributed, f"{path}: Label is only valid on a Distributed Map"
            assert isinstance(node["Label"], str) and LABEL.fullmatch(node["Label"]), f"{path}: invalid Label {node['Label']!r}"
            del node["Label"]
            checked.append(f"{path}.Label")
        if "ToleratedFailurePercentage" in node:
            value = node["ToleratedFailurePercentage"]
            assert distributed, f"{path}: ToleratedFailurePercentage is only valid on a Distributed Map"
            assert isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100, (
                f"{path}: ToleratedFailurePercentage must be a number from 0 to 100, got {value!r}"
            )
            if isinstance(value, float):
                del node["ToleratedFailurePercentage"]
                checked.append(f"{path}.ToleratedFailurePercentage")
        config = node.get("ItemReader", {}).get("ReaderConfig")
        if isinstance(config, dict) and "InputType" in config:
            assert config["InputType"] in READER_INPUT_TYPES, f"{path}: unknown ReaderConfig.InputType {config['InputType']!r}"
            node["ItemReader"] = {**node["ItemReader"], "ReaderConfig": {k: v for k, v in config.items() if k != "InputType"}}
            checked.append(f"{path}.ItemReader.ReaderConfig.InputType")
    return {key: without_known_statelint_gaps(value, f"{path}.{key}", checked) for key, value in node.items()}


def state_machines_using(asl: Path) -> list[dict[str, Any]]:
    template = cfn.load(TEMPLATE)
    return [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::StateMachine"
        and (REPO / resource["Properties"].get("DefinitionUri", "")).resolve() == asl.resolve()
    ]


def test_there_is_a_state_machine_definition() -> None:
    assert ASL_FILES, "no statemachine/*.asl.json found"


@pytest.mark.parametrize("asl", ASL_FILES, ids=rel)
def test_statelint(asl: Path, tmp_path: Path) -> None:
    machines = state_machines_using(asl)
    assert machines, f"{rel(asl)} is the DefinitionUri of no AWS::Serverless::StateMachine in template.yaml"
    for index, machine in enumerate(machines):
        definition = json.loads(substituted_definition(asl.read_text(), machine.get("DefinitionSubstitutions", {})))
        checked: list[str] = []
        linted = tmp_path / f"{index}-{asl.name}"
        linted.write_text(json.dumps(without_known_statelint_gaps(definition, "State Machine", checked), indent=2))

        result = run([venv_tool("statelint"), linted])
        assert result.returncode == 0, (
            report(result) + f"\n(statelint read {rel(asl)} with its DefinitionSubstitutions applied, and without "
            f"these fields, which this test checked itself: {checked})"
        )


def test_statelint_finds_problems() -> None:
    # The linter run above really lints: a definition with a dangling Next fails it.
    broken = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}
    result = run([venv_tool("statelint"), json.dumps(broken)])
    assert result.returncode != 0 and "Nowhere" in result.stdout + result.stderr, report(result)
