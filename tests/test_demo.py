"""`make demo` is one of the two commands the README promises: it must run to the end on a fresh checkout."""

from __future__ import annotations

import re
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


def test_the_demo_names_every_key_warns_before_disabling_follows_the_helper_user_and_writes_every_email(
    tmp_path, capfd, caplog, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    """Issue 9 item 8 and issue 11's demo: run in process, so that every secret the demo's AWS makes is known
    (the leak check of tests/leaks.py) and looked for in its output and in every email file."""
    from tests.leaks import LeakCheck, _remember_every_key

    demo = _demo_module()
    check = LeakCheck(None, capfd, caplog)  # type: ignore[arg-type]  # find_in only: no AWS of its own to scan
    _remember_every_key(check, monkeypatch)

    runs = demo.scenario(show=True, preview=tmp_path)
    out = capfd.readouterr().out

    by_title = {run.title.split(":")[0]: run for run in runs}
    assert list(by_title) == ["Day 0", "Day 8", "Day 15", "Day 25", "Replay of the failed account"]
    # Every action names its account, user and key (and a rotation its new key), in the output too.
    key_id = re.compile(r"^AKIA[A-Z0-9]{16}$")
    for run in runs:
        actions = [event for event in run.events if not event.what.startswith("notice")]
        assert actions, run.title
        for event in actions:
            assert event.account and event.user and key_id.match(event.key_id), event
            assert event.line() in out
            if event.what == "rotate" and event.result == "done":
                assert key_id.match(event.new_key_id), event
    # Day 8 is inside the warning window: each key rotated on day 0 is warned about, then disabled on day 15.
    rotated = {(e.account, e.user, e.key_id) for e in by_title["Day 0"].events if e.what == "rotate"}
    warned = {(e.account, e.user, e.key_id) for e in by_title["Day 8"].events if e.what == "notice: disable-soon"}
    disabled = {(e.account, e.user, e.key_id) for e in by_title["Day 15"].events if e.what == "disable"}
    assert warned and warned <= rotated and warned <= disabled
    assert not any(e.what == "disable" for e in by_title["Day 8"].events if (e.account, e.user, e.key_id) in warned)

    # The helper user: configured once with its first key, its calls follow the rotation, the disable, the deletion.
    (rotation,) = [e for e in by_title["Day 0"].events if e.user == "deployer"]
    first, second = rotation.key_id, rotation.new_key_id
    calls = [call for run in runs for call in run.calls]
    assert [call.key_id for call in calls] == [first, second, second, second, second]
    assert all(call.arn.endswith(":user/deployer") for call in calls)
    assert f"switched from key {first} to {second}" in calls[1].helper_said
    assert f"{first} Active" in calls[1].keys  # the old key still worked when the helper switched
    assert f"{first} Inactive" in calls[3].keys and first not in calls[4].keys  # disabled on day 15, gone on day 25
    assert [e.what for e in by_title["Day 15"].events if e.key_id == first] == ["disable"]
    assert [e.what for e in by_title["Day 25"].events if e.key_id == first] == ["delete"]
    assert f"signed with key {first}" in out and f"signed with key {second}" in out

    # Every email sent, as a .txt and an .html a person can open, and the index; no secret anywhere.
    index = (tmp_path / "index.txt").read_text()
    emails = [line.split(" ", 1)[0].removesuffix(".txt") for line in index.splitlines()[2:]]
    assert len(emails) == int(index.split(" ", 1)[0]) and len(emails) >= len(runs)  # a run report per run at least
    for stem in emails:
        assert (tmp_path / f"{stem}.txt").read_text().strip() and "<html" in (tmp_path / f"{stem}.html").read_text()
        assert f'href="{stem}.html"' in (tmp_path / "index.html").read_text()
    assert any("deployer" in (tmp_path / f"{stem}.txt").read_text() for stem in emails)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2 * len(emails) + 2
    leaks = [leak for path in files for leak in check.find_in(str(path), path.read_text())]
    leaks += check.find_in("the demo's output", out)
    assert check.secrets and not leaks, "\n".join(str(leak) for leak in leaks)
