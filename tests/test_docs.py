"""The documentation's links and citations lead somewhere.

The README links to its own sections and to docs/lifecycle.md; code, tests and emails cite the
lifecycle specification by its path, a comma and a heading in quotes. Each must name a heading that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIFECYCLE = REPO / "docs" / "lifecycle.md"
DOCS = [REPO / "README.md", LIFECYCLE]
CITING = ["layers", "functions", "keyrotation_cli", "localaws", "scripts", "tests", "templates", "security"]
CITATION = re.compile(r"""docs/lifecycle\.md,\s+["'](?P<heading>[^"']+)["']""")
LINK = re.compile(r"\]\((?P<file>[\w./-]*)(?:#(?P<anchor>[\w-]+))?\)")


def headings(path: Path) -> list[str]:
    """The Markdown headings of ``path``, outside code blocks."""
    found, fenced = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            found.append(match.group(1).strip())
    return found


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading:

    >>> anchor("The key's users: `keyrotation credentials`")
    'the-keys-users-keyrotation-credentials'
    """
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def test_the_lifecycle_specification_is_its_own_document() -> None:
    assert headings(LIFECYCLE)[0] == "Key lifecycle"
    readme = (REPO / "README.md").read_text()
    assert "](docs/lifecycle.md)" in readme


@pytest.mark.parametrize("document", DOCS, ids=lambda path: path.name)
def test_every_link_names_a_heading(document: Path) -> None:
    broken = []
    for match in LINK.finditer(document.read_text()):
        target = (document.parent / match["file"]).resolve() if match["file"] else document
        anchors = {anchor(heading) for heading in headings(target)} if target.exists() else set()
        if not target.exists() or (match["anchor"] and match["anchor"] not in anchors):
            broken.append(match.group(0))
    assert broken == []


def test_every_citation_of_the_lifecycle_names_a_heading() -> None:
    known = set(headings(LIFECYCLE))
    cited = {}
    for folder in CITING:
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".j2", ".yaml", ".md"}:
                for match in CITATION.finditer(path.read_text()):
                    cited.setdefault(match["heading"], []).append(str(path.relative_to(REPO)))
    assert cited, "nothing cites docs/lifecycle.md by heading"
    assert {heading: paths for heading, paths in cited.items() if heading not in known} == {}
