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


def _demo_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_script", REPO / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_make_demo_repeat_fails_when_one_demo_differs_or_fails(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """`make demo REPEAT=N` (README): every demo must show the same results and no unexpected failure."""
    demo = _demo_module()

    class Execution:
        status, error = "SUCCEEDED", None

    def runs(legacy_status: str, other_status: str = "SUCCEEDED") -> list:  # type: ignore[type-arg]
        rows = (
            demo.Row("legacy", "1", legacy_status, 0, 0, 0, 0, 0, "KeyRotation.MemberRoleUnavailable"),
            demo.Row("dev", "2", other_status, 1, 0, 0, 0, 0, "" if other_status == "SUCCEEDED" else "States.Runtime"),
        )
        return [demo.Run("Day 0: keys past 75 days are rotated", Execution(), rows)]

    same = iter([runs("FAILED"), runs("FAILED")])
    monkeypatch.setattr(demo, "scenario", lambda show: next(same))
    assert demo.repeat(2) == 0
    differing = iter([runs("FAILED"), runs("SUCCEEDED")])
    monkeypatch.setattr(demo, "scenario", lambda show: next(differing))
    assert demo.repeat(2) == 1
    spurious = iter([runs("FAILED", other_status="FAILED")])
    monkeypatch.setattr(demo, "scenario", lambda show: next(spurious))
    assert demo.repeat(1) == 1
    assert "UNEXPECTED: Day 0: keys past 75 days are rotated: dev FAILED States.Runtime" in capsys.readouterr().out
