"""The ``keyrotation`` command is installed from the repository, and ``--local`` works on its own.

``make venv`` installs the repository (``pip install -e .``), which makes the console script that
``pyproject.toml`` names; here the entry point is checked to be the command line itself, and
``keyrotation --local`` is run as a person would, in a fresh in-memory organization.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from click.testing import CliRunner

from keyrotation_cli.main import cli

REPO = Path(__file__).resolve().parent.parent


def test_the_console_script_is_the_command_line() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    module, _, function = project["project"]["scripts"]["keyrotation"].partition(":")
    entry = getattr(importlib.import_module(module), function)
    assert entry.__module__ == "keyrotation_cli.main" and callable(entry)
    packages = project["tool"]["setuptools"]["packages"]
    assert {"keyrotation_cli", "keyrotation", "localaws"} <= set(packages)
    assert "pip install --quiet --no-deps -e ." in (REPO / "Makefile").read_text()


def test_help_names_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("plan", "run", "status", "replay", "history", "credentials"):
        assert f"  {command} " in result.output


def test_local_plans_on_a_fresh_in_memory_organization() -> None:
    result = CliRunner(env={"COLUMNS": "250"}).invoke(cli, ["--local", "plan"])
    lines = [line for line in result.output.splitlines() if line.startswith("│ ")]
    assert result.exit_code == 1, result.output  # the organization's `legacy` account has no member role
    assert any("deploy-bot" in line and "rotate" in line and "planned" in line for line in lines), result.output
    assert any("KeyRotation.MemberRoleUnavailable" in line for line in lines), result.output
    assert "dry run: nothing was changed" in result.output
