"""`imcache interfaces` and `run NAME --help` find a tool as a run of it does (one `which`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def _validate(*paths: str) -> subprocess.CompletedProcess[str]:
    """A real process with a deadline: today's code waited for ever on a fifo."""
    return subprocess.run(
        [sys.executable, "-m", "imcache", "validate", *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_refuses_a_fifo_and_a_device_at_once(tmp_path: Path, isolated: Path) -> None:
    fifo = tmp_path / "definition.json"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        result = _validate(path)
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.splitlines()
        assert path in line
        assert "not a regular file" in line
        assert "4 MiB" in line


def test_validate_refuses_a_definition_over_4_mib(tmp_path: Path, isolated: Path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text('{"description": "' + "x" * (4 << 20) + '"}')
    result = _validate(str(huge))
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert str(huge) in line and "larger than 4 MiB" in line


def test_a_catalogue_definition_is_read_with_the_same_bound(tmp_path: Path, isolated: Path) -> None:
    root = _catalogue(tmp_path / "cat", "here")
    (root / "local" / "Big.json").write_text('{"description": "' + "x" * (4 << 20) + '"}')
    result = CliRunner().invoke(
        cli, ["run", "local.Big", "--help"], env={"IMCACHE_PATH": str(root)}
    )
    assert result.exit_code == 2
    assert "larger than 4 MiB" in result.stderr
