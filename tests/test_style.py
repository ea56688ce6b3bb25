"""The product code is formatted, linted (ruff, settings in pyproject.toml) and fully typed (mypy --strict)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PRODUCT = ["layers", "functions", "localaws", "scripts", "keyrotation_cli"]


def run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, check=False)


def test_ruff_finds_nothing() -> None:
    result = run(str(BIN / "ruff"), "check", *PRODUCT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_formatted() -> None:
    result = run(str(BIN / "ruff"), "format", "--check", *PRODUCT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer_and_handlers_are_strictly_typed() -> None:
    env = {**os.environ, "MYPYPATH": str(REPO / "layers" / "keyrotation")}
    handlers = sorted(str(path.relative_to(REPO)) for path in (REPO / "functions").glob("*/app.py"))
    base = [str(BIN / "mypy"), "--strict", "--ignore-missing-imports", "--python-version", "3.11", "--no-incremental"]
    layer = run(*base, "-p", "keyrotation", env=env)
    assert layer.returncode == 0, layer.stdout + layer.stderr
    for handler in handlers:  # one at a time: every handler module is named app
        result = run(*base, handler, env=env)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_operator_cli_is_strictly_typed() -> None:
    """keyrotation_cli, checked strictly; what it imports (the layer, localaws) is followed but judged elsewhere."""
    env = {**os.environ, "MYPYPATH": str(REPO / "layers" / "keyrotation")}
    base = [str(BIN / "mypy"), "--strict", "--ignore-missing-imports", "--python-version", "3.11", "--no-incremental"]
    result = run(*base, "--follow-imports", "silent", "-p", "keyrotation_cli", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
