"""Boutiques' file-template: imcache writes the configuration file into the entry before the tool
runs, filled as bosh fills it (the bosh conformance tests compare the text with bosh's own file);
here a real program reads it, and its text is part of what the key covers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import imcache, run_json


def config_definition() -> dict[str, Any]:
    """`cat CONFIG`: the tool's stdout is the configuration file it was handed."""
    return {
        "name": "cat",
        "description": "print a configuration file",
        "command-line": "cat [CONFIG]",
        "inputs": [
            {"id": "label", "name": "label", "type": "String", "value-key": "[LABEL]"},
            {"id": "image", "name": "image", "type": "File", "value-key": "[IMAGE]"},
            {
                "id": "level",
                "name": "level",
                "type": "Number",
                "optional": True,
                "value-key": "[LEVEL]",
            },
        ],
        "output-files": [
            {
                "id": "config",
                "name": "config",
                "path-template": "[LABEL].conf",
                "value-key": "[CONFIG]",
                "file-template": ["label = [LABEL]", "image = [IMAGE]", "level = [LEVEL]", "end"],
            }
        ],
        "stdout-output": {"id": "printed", "name": "printed"},
    }


@pytest.fixture
def catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "defs"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "Config.json").write_text(json.dumps(config_definition()))
    monkeypatch.setenv("IMCACHE_PATH", str(folder))
    return folder


def test_the_tool_reads_the_file_written_before_it_ran(catalogue: Path, isolated: Path) -> None:
    image = isolated / "t1 scan.nii"
    image.write_bytes(b"image")

    first = run_json("run", "x.Config", "--label", "a b", "--image", str(image), "--json")

    printed = Path(first["outputs"]["printed"]).read_text()
    assert printed == f"label = 'a b'\nimage = '{image}'\n\nend"  # quoted as bosh quotes
    assert Path(first["outputs"]["config"]).name == "a b.conf"
    assert Path(first["outputs"]["config"]).read_text() == printed
    assert not first["cached"]


def test_the_file_follows_the_values_and_the_key_with_it(catalogue: Path, isolated: Path) -> None:
    (isolated / "t1.nii").write_bytes(b"image")
    words = ["run", "x.Config", "--label", "a", "--image", "t1.nii", "--json"]

    plain = run_json(*words)
    again = run_json(*words)
    leveled = run_json(*words, "--level", "3")

    assert again["cached"] and again["key"] == plain["key"]
    assert leveled["key"] != plain["key"] and not leveled["cached"]
    assert "level = 3\n" in Path(leveled["outputs"]["printed"]).read_text()


def test_a_bad_file_template_is_refused_naming_the_field(catalogue: Path) -> None:
    definition = config_definition()
    definition["output-files"][0]["file-template"] = "label = [LABEL]"
    (catalogue / "x" / "Config.json").write_text(json.dumps(definition))

    result = imcache("run", "x.Config", "--label", "a", "--image", "t1.nii")

    assert result.exit_code == 1
    assert "file-template" in result.stderr and "list of lines" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_same_data_elsewhere_gets_its_own_file(
    catalogue: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file names the input by its absolute path: the same image in another folder must not
    hand back a file naming this one's (inputs alone count by name and content)."""
    words = ["run", "x.Config", "--label", "a", "--image", "t1.nii", "--json"]
    results = []
    for folder in ("one", "two"):
        (isolated / folder).mkdir()
        (isolated / folder / "t1.nii").write_bytes(b"the same image")
        monkeypatch.chdir(isolated / folder)
        results.append(run_json(*words))

    assert results[0]["key"] != results[1]["key"] and not results[1]["cached"]
    assert (
        f"image = {isolated / 'two' / 't1.nii'}\n"
        in Path(results[1]["outputs"]["printed"]).read_text()
    )


def test_a_file_that_cannot_be_written_is_one_line_and_kept_aside(
    catalogue: Path, isolated: Path, cache_root: Path
) -> None:
    (isolated / "t1.nii").write_bytes(b"image")

    result = imcache("run", "x.Config", "--label", "a" * 300, "--image", "t1.nii")

    assert result.exit_code == 2, result.stderr
    assert "cannot write the configuration file config" in result.stderr
    assert "File name too long" in result.stderr and len(result.stderr.splitlines()) == 1
    entries = [p.name for p in (cache_root / "x.Config").iterdir() if p.is_dir()]
    assert entries and all(".failed-" in name for name in entries), entries


def script_definition() -> dict[str, Any]:
    """`sh SCRIPT`: a configuration file that names another output's path, and a tool that
    notes its own working folder."""
    return {
        "name": "script",
        "description": "run a script written from a file-template",
        "command-line": "sh [SCRIPT] [OUT]",
        "inputs": [{"id": "label", "name": "label", "type": "String", "value-key": "[LABEL]"}],
        "output-files": [
            {
                "id": "script",
                "name": "script",
                "path-template": "make.sh",
                "value-key": "[SCRIPT]",
                "file-template": ["echo [LABEL] > [OUT]", "pwd > where.txt"],
            },
            {"id": "out", "name": "out", "path-template": "[LABEL].txt", "value-key": "[OUT]"},
        ],
    }


def test_nothing_imcache_writes_names_the_run_s_private_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    """Issue 16: the tool runs in `<key>.run-<host>-<pid>`, renamed onto `<key>` once complete.
    The configuration file and argv name outputs relative to the folder the tool runs in, so
    their text holds in the published entry; the record and every path handed back name the
    entry. (What the tool writes of its own working folder, `pwd` here, names the run's.)"""
    folder = tmp_path / "defs"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "Script.json").write_text(json.dumps(script_definition()))
    monkeypatch.setenv("IMCACHE_PATH", str(folder))

    ran = run_json("run", "x.Script", "--label", "a")

    entry = Path(ran["work_dir"])
    assert entry.name == ran["key"] and entry.is_dir()
    assert Path(ran["outputs"]["out"]) == entry / "a.txt"
    assert (entry / "a.txt").read_text() == "a\n"
    assert Path(ran["outputs"]["script"]).read_text() == "echo a > a.txt\npwd > where.txt"
    record_text = (entry / "imcache.json").read_text()
    assert ".run-" not in record_text and ".run-" not in json.dumps(ran)
    assert json.loads(record_text)["argv"] == ["sh", "make.sh", "a.txt"]
    assert (entry / "where.txt").read_text().startswith(f"{entry}.run-")
    assert sorted(p.name for p in entry.parent.iterdir()) == [entry.name, f"{entry.name}.lock"]
