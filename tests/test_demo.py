"""`make demo` is one of the two commands the README promises: it must run to the end on a fresh checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_demo_runs_every_day_and_the_replay_succeeds() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "=== Replay of the failed account: execution day-025-replay ended SUCCEEDED" in result.stdout
    for day in ("Day 0", "Day 15", "Day 25"):
        assert f"=== {day}:" in result.stdout
