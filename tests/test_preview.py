"""`make preview` renders every email template into a folder a person opens: it must run to the end."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_make_preview_renders_every_email_with_the_hostile_samples_escaped(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "preview_emails.py"), "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    for variant in ("real", "preview"):
        assert (tmp_path / f"run_report-{variant}.html").is_file()
        assert (tmp_path / f"run_report-{variant}.txt").is_file()
        digests = sorted(tmp_path.glob(f"digest-{variant}-*.html"))
        assert len(digests) >= 3, digests  # alice, the 64-character user's owner, the third user's owner, ...
    assert (tmp_path / "index.html").is_file()
    for page in tmp_path.glob("*.html"):
        if page.name == "index.html":
            continue
        text = page.read_text(encoding="utf-8")
        # The samples carry script and markup: every one of them reaches the page escaped.
        assert "<script>alert" not in text, page.name
        assert not re.search(r"<img src=x", text), page.name
