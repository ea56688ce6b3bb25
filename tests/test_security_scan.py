"""Security scanners on the templates, every policy document and the code: no finding left unjustified.

* checkov on template.yaml, on the CloudFormation template SAM translates it into, on
  member-account/role.yaml and on security/organization-policies.yaml, in one process. A check
  skipped everywhere is in .checkov.yaml with its reason on its line; a check skipped for one
  resource is in that resource's Metadata with a comment.
* parliament on every policy document of both templates, of the service control policies, the
  session policies and the key secret's resource policy (extracted by scripts/extract_policies.py,
  linted by scripts/lint_policies.py); the findings it ignores are in security/parliament.yaml, each
  with its reason.
* bandit on the product's Python; a ``# nosec`` says why on its line.
* cfn-lint and ``sam validate --lint`` run in tests/test_lint.py, on the same three templates.

checkov, parliament and bandit live in .venv-scan (requirements-scan.txt: checkov pins many libraries
of its own), the SAM translator in .venv-sam; ``make test`` builds both. No test skips itself: a
missing tool fails and says how to get it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from localaws import cfn
from tests.test_lint import REPO, offline_env, report, sam_cli

CHECKOV_CONFIG = REPO / ".checkov.yaml"
PARLIAMENT_CONFIG = REPO / "security" / "parliament.yaml"
SCANNED_TEMPLATES = [
    REPO / "template.yaml",
    REPO / "member-account" / "role.yaml",
    REPO / "security" / "organization-policies.yaml",
]
PYTHON_SOURCES = ["layers", "functions", "scripts", "localaws", "keyrotation_cli"]
TIMEOUT = 600


def scan_tool(name: str) -> Path:
    """A scanner the Makefile installs in .venv-scan (or $SCAN_BIN)."""
    folder = Path(os.environ.get("SCAN_BIN") or REPO / ".venv-scan" / "bin")
    tool = folder / name
    if not tool.is_file():
        pytest.fail(
            f"{tool} not found: run `make scan-venv` (checkov, parliament and bandit in their own virtualenv, "
            "requirements-scan.txt), or point SCAN_BIN at its bin folder; `make test` does both.",
            pytrace=False,
        )
    return tool


def run(command: list[str | Path], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=offline_env(BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false"),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.fixture(scope="module")
def translated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """template.yaml as SAM translates it (with the translator of the SAM CLI's own virtualenv)."""
    target = tmp_path_factory.mktemp("scan") / "template.json"
    result = run([sam_cli().parent / "python", "scripts/sam_translate.py", "template.yaml", target])
    assert result.returncode == 0, report(result)
    return target


# ---------------------------------------------------------------- checkov


def checkov_failures(output: str) -> tuple[list[str], int]:
    """(failed checks, passed count) from checkov's JSON report (one report, or one per framework)."""
    reports = json.loads(output)
    reports = reports if isinstance(reports, list) else [reports]
    failed, passed = [], 0
    for one in reports:
        if "results" not in one:  # a framework that found nothing to scan
            continue
        passed += one["summary"]["passed"]
        for check in one["results"]["failed_checks"]:
            failed.append(f"{check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})")
    return failed, passed


def test_checkov_finds_nothing_unjustified(translated: Path) -> None:
    files = [*SCANNED_TEMPLATES, translated]
    command: list[str | Path] = [scan_tool("checkov"), "--config-file", CHECKOV_CONFIG, "-o", "json", "--compact"]
    for path in files:
        command += ["-f", path]
    result = run(command)
    assert result.stdout.strip().startswith(("{", "[")), report(result)
    failed, passed = checkov_failures(result.stdout)
    assert not failed, "checkov findings (fix them, or skip with a reason):\n" + "\n".join(failed)
    assert passed > 0, report(result)


def test_every_checkov_skip_says_why() -> None:
    lines = CHECKOV_CONFIG.read_text().splitlines()
    skips = [line for line in lines if re.match(r"\s*-\s*CKV\d?_", line)]
    assert skips, f"no skip-check entry found in {CHECKOV_CONFIG}"
    for line in skips:
        reason = line.partition("#")[2].strip()
        assert len(reason.split()) >= 8, f"{CHECKOV_CONFIG.name}: a skipped check needs its reason on its line: {line}"
    for template_path in SCANNED_TEMPLATES:
        for logical_id, resource in cfn.load(template_path).get("Resources", {}).items():
            for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(str(skip.get("comment", "")).split()) >= 8, (
                    f"{template_path.name} {logical_id}: skip of {skip.get('id')} needs a comment saying why"
                )


def test_checkov_finds_problems(tmp_path: Path) -> None:
    # The run above really scans: a bucket without a public access block fails it.
    template = tmp_path / "bad.yaml"
    template.write_text(yaml.safe_dump({"Resources": {"Open": {"Type": "AWS::S3::Bucket", "Properties": {}}}}))
    result = run([scan_tool("checkov"), "--config-file", CHECKOV_CONFIG, "-o", "json", "--compact", "-f", template])
    failed, _ = checkov_failures(result.stdout)
    assert any(finding.startswith("CKV_AWS_53 ") for finding in failed), report(result)


# ---------------------------------------------------------------- parliament


def extracted_policies(translated: Path) -> Path:
    folder = translated.parent / "policies"
    result = run([sys.executable, "scripts/extract_policies.py", translated, folder])
    assert result.returncode == 0, report(result)
    return folder


def test_parliament_finds_nothing_unjustified(translated: Path) -> None:
    folder = extracted_policies(translated)
    index: list[dict[str, Any]] = json.loads((folder.parent / "policies.index.json").read_text())
    kinds = {entry["kind"] for entry in index}
    assert kinds == {"identity", "trust", "resource", "scp", "rcp", "session"}, kinds
    assert {entry["source"] for entry in index} == {"template", "member-role", "scp", "session", "secret"}
    result = run([scan_tool("python"), "scripts/lint_policies.py", folder, PARLIAMENT_CONFIG])
    assert result.returncode == 0, report(result)


def test_parliament_finds_problems(tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "*"}]}
    (folder / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "policies.index.json").write_text(json.dumps([{"file": "bad.json", "kind": "identity"}]))
    (tmp_path / "none.yaml").write_text("ignore: []\n")
    result = run([scan_tool("python"), "scripts/lint_policies.py", folder, tmp_path / "none.yaml"])
    assert result.returncode == 1 and "UNKNOWN_ACTION" in result.stdout, report(result)
    # An ignore that matches nothing is a finding too: the list cannot outlive what it was written for.
    result = run([scan_tool("python"), "scripts/lint_policies.py", folder, PARLIAMENT_CONFIG])
    assert result.returncode == 1 and "UNUSED_IGNORE" in result.stdout, report(result)


# ---------------------------------------------------------------- bandit


def test_bandit_finds_nothing() -> None:
    result = run([scan_tool("bandit"), "-q", "-r", *PYTHON_SOURCES, "-f", "json"])
    findings = json.loads(result.stdout)["results"]
    assert not findings, "bandit findings:\n" + "\n".join(
        f"{item['test_id']} {item['filename']}:{item['line_number']} {item['issue_text']}" for item in findings
    )
    assert result.returncode == 0, report(result)


def test_every_nosec_says_why() -> None:
    for folder in PYTHON_SOURCES:
        for path in sorted((REPO / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if "nosec" in line:
                    match = re.search(r"#\s*(?P<why>[^#]{12,}?)\s*#\s*nosec B\d{3}\s*$", line)
                    assert match, f"{path.relative_to(REPO)}:{number}: write '# <why>  # nosec B<id>': {line.strip()}"
