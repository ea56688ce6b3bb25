"""Run parliament on every policy document ``scripts/extract_policies.py`` wrote; print what it finds.

Runs with the scanners' interpreter (.venv-scan/bin/python). parliament reads identity policies:
a trust or resource policy is given to it with the resource it is attached to as its ``Resource``
(the statement's Principal kept), which is what that policy governs. The findings parliament is
told to ignore, each with the reason, are in ``security/parliament.yaml`` (read here, not by
parliament, whose own ``ignore_locations`` matching does not work on plain values).

Prints one JSON object per finding and exits 1 if there is any; exits 0 after printing the count
of documents read otherwise.

    .venv-scan/bin/python scripts/lint_policies.py build/scan/policies security/parliament.yaml
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import parliament
import yaml


def lintable(document: dict[str, Any], attached_to: str | None) -> dict[str, Any]:
    if attached_to is None:
        return document
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    with_resource = []
    for statement in statements:
        if "Resource" not in statement and "NotResource" not in statement:
            statement = {**statement, "Resource": attached_to}
        with_resource.append(statement)
    return {**document, "Statement": with_resource}


def load_ignores(path: Path) -> list[dict[str, str]]:
    ignores = list(yaml.safe_load(path.read_text()).get("ignore", []))
    for entry in ignores:
        if not str(entry.get("why", "")).strip() or not entry.get("issue") or not entry.get("file"):
            raise SystemExit(f"{path}: every ignore needs an issue, a file pattern and a reason (why): {entry}")
    return ignores


def _ignored(finding: dict[str, Any], entry: dict[str, str]) -> bool:
    return (
        finding["issue"] == entry["issue"]
        and re.fullmatch(entry["file"], finding["file"]) is not None
        and ("detail" not in entry or re.search(entry["detail"], json.dumps(finding["detail"])) is not None)
    )


def findings(folder: Path, ignores: list[dict[str, str]]) -> tuple[int, list[dict[str, Any]]]:
    """(documents read, findings not ignored); an ignore that matched nothing is a finding too."""
    index = json.loads((folder.parent / f"{folder.name}.index.json").read_text())
    found, used = [], set()
    for entry in index:
        document = lintable(json.loads((folder / entry["file"]).read_text()), entry.get("attachedTo"))
        policy = parliament.analyze_policy_string(json.dumps(document, indent=2), filepath=entry["file"])
        for raw in map(parliament.enhance_finding, policy.findings):
            finding = {
                "file": entry["file"],  # parliament's own location.filepath is not reliable
                "issue": raw.issue,
                "severity": raw.severity,
                "title": raw.title,
                "detail": raw.detail,
                "line": raw.location.get("line"),
            }
            matched = [n for n, ignore in enumerate(ignores) if _ignored(finding, ignore)]
            used.update(matched)
            if not matched:
                found.append(finding)
    for n, ignore in enumerate(ignores):
        if n not in used:
            found.append({"issue": "UNUSED_IGNORE", "detail": f"ignores nothing any more: {ignore}"})
    return len(index), found


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    count, found = findings(Path(argv[1]), load_ignores(Path(argv[2])))
    for finding in found:
        print(json.dumps(finding, default=str))
    print(f"parliament read {count} policy documents: {len(found)} findings")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
