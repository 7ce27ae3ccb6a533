"""Name resolution: --interfaces, then IMCACHE_PATH, then the built-ins; the first match wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from imcache.cli.main import cli


def _catalogue(root: Path, tool: str) -> Path:
    """A catalogue that defines mrtrix3.MRCat (shadowing the built-in) as `tool`."""
    definition = {
        "name": tool,
        "schema-version": "0.5",
        "description": f"defined in {root.name}",
        "command-line": f"{tool} [X]",
        "inputs": [{"id": "x", "name": "x", "type": "String", "value-key": "[X]"}],
    }
    (root / "mrtrix3").mkdir(parents=True)
    (root / "mrtrix3" / "MRCat.json").write_text(json.dumps(definition))
    return root


def _runs(args: list[str]) -> str:
    result = CliRunner().invoke(cli, [*args, "run", "mrtrix3.MRCat", "--x", "v", "--dry-run"])
    assert result.exit_code == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("argv:"))


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flag_dir = _catalogue(tmp_path / "flag", "from-flag")
    env_dir = _catalogue(tmp_path / "env", "from-env")
    builtin = CliRunner().invoke(cli, ["run", "mrtrix3.MRCat", "--x", "v", "--dry-run"])
    assert builtin.exit_code == 2 and "has no option --x" in builtin.stderr  # the built-in answers
    monkeypatch.setenv("IMCACHE_PATH", str(env_dir))
    assert _runs([]) == "argv:      from-env v"
    assert _runs(["--interfaces", str(flag_dir)]) == "argv:      from-flag v"


def test_interfaces_marks_shadowed_definitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMCACHE_PATH", str(_catalogue(tmp_path / "env", "from-env")))
    result = CliRunner().invoke(cli, ["interfaces", "--json", "MRCat"])
    rows = json.loads(result.stdout)
    assert [(row["tool"], row["shadowed"]) for row in rows] == [
        ("from-env", False),
        ("mrcat", True),
    ]


def test_definition_memo_reads_a_changed_definition_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imcache.core.interfaces.registry import DefinitionMemo

    folder = _catalogue(tmp_path / "defs", "cat")
    path = folder / "mrtrix3" / "MRCat.json"
    memo = DefinitionMemo("mrtrix3.MRCat", [str(folder)])
    monkeypatch.setattr(DefinitionMemo, "RECENT_NS", 0)  # the file was just written
    first = memo.current()
    assert memo.current() is first  # unchanged: not read again
    data = json.loads(path.read_text())
    data["description"] = "edited"
    path.write_text(json.dumps(data))
    edited = memo.current()
    assert edited is not first and edited.description == "edited"
    assert edited.digest != first.digest  # a new key: an edited definition never hits
    monkeypatch.setattr(DefinitionMemo, "RECENT_NS", 10**12)
    path.write_text(json.dumps({**data, "description": "again"}))
    assert memo.current().description == "again"
    assert memo.current() is not memo.current()  # changed moments ago: always read again
