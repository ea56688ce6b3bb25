"""Translate template.yaml into the CloudFormation template SAM deploys, for scanners to read.

Runs with the SAM CLI's interpreter (.venv-sam/bin/python): samtranslator comes with aws-sam-cli.
The local CodeUri/ContentUri/DefinitionUri are replaced by S3 locations first, as `sam package`
would, since the translator takes only those; nothing is uploaded and AWS is never called.

    .venv-sam/bin/python scripts/sam_translate.py template.yaml build/scan/template.json
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

LOCAL_URIS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


class NoManagedPolicies:
    """The translator looks managed policies up by name only for names it must turn into ARNs: none here."""

    def load(self) -> dict[str, str]:
        return {}


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    for logical_id, resource in template.get("Resources", {}).items():
        field = LOCAL_URIS.get(resource.get("Type", ""))
        properties = resource.get("Properties", {})
        if field and isinstance(properties.get(field), str) and not properties[field].startswith("s3://"):
            properties[field] = f"s3://example-artifacts/{logical_id}.zip"
    return template


def translate(source: Path) -> dict[str, Any]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator asks for a region, never AWS
    template = packaged(yaml_parse(source.read_text()))
    return dict(transform(template, {}, NoManagedPolicies()))


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, target = Path(argv[1]), Path(argv[2])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(translate(source), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
