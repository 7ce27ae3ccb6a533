"""`imcache interfaces` and `run NAME --help` find a tool as a run of it does (one `which`)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from imcache.cli.main import cli


def _catalogue(root: Path, tool: str) -> Path:
    definition = {
        "name": tool,
        "schema-version": "0.5",
        "description": "a program in the working folder",
        "command-line": f"{tool} [X]",
        "inputs": [{"id": "x", "name": "x", "type": "String", "value-key": "[X]"}],
    }
    (root / "local").mkdir(parents=True)
    (root / "local" / "Here.json").write_text(json.dumps(definition))
    return root


def test_the_listing_and_the_help_find_the_tool_where_a_run_finds_it(
    tmp_path: Path, isolated: Path
) -> None:
    # An empty PATH names the working folder for a run (as for execvp), not for shutil.which:
    # the three answers agree only if they ask the same lookup.
    catalogue = str(_catalogue(tmp_path / "catalogue", "heretool"))
    program = isolated / "heretool"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    runner = CliRunner(env={"PATH": ""})

    plan = runner.invoke(
        cli, ["--interfaces", catalogue, "run", "local.Here", "--x", "v", "--dry-run"]
    )
    assert plan.exit_code == 0, plan.stderr
    assert "not on PATH" not in plan.stdout

    listed = runner.invoke(cli, ["--interfaces", catalogue, "interfaces", "--json", "local."])
    assert listed.exit_code == 0, listed.stderr
    assert [(row["tool"], row["found"]) for row in json.loads(listed.stdout)] == [
        ("heretool", True)
    ]

    shown = runner.invoke(cli, ["--interfaces", catalogue, "run", "local.Here", "--help"])
    assert shown.exit_code == 0, shown.stderr
    assert "Runs: heretool (heretool)" in shown.stdout

    program.unlink()
    gone = runner.invoke(cli, ["--interfaces", catalogue, "interfaces", "--json", "local."])
    assert json.loads(gone.stdout)[0]["found"] is False
    shown = runner.invoke(cli, ["--interfaces", catalogue, "run", "local.Here", "--help"])
    assert "Runs: heretool (not found on PATH)" in shown.stdout
