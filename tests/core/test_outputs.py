"""What a miss leaves in its entry (core/outputs.py): the outputs it collected and the record.

Real runs of mrcat through `imcache run`, behind the counting wrapper of test_run.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import first_on_path, imcache, require_tool, run_json
from tests.core.test_run import MRCAT, Calls, MakeNifti, concat_args


@pytest.fixture
def pair(make_nifti: MakeNifti) -> tuple[Path, Path]:
    """Two different (4, 4, 3) volumes, a.nii and b.nii, in the working folder."""
    return make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)


def test_json_object(counting_mrcat: Calls, pair: tuple[Path, Path], cache_root: Path) -> None:
    data = run_json(*concat_args("a.nii", "b.nii"))
    assert {"interface", "key", "cached", "work_dir", "outputs", "exit_code"} <= set(data)
    assert data["interface"] == MRCAT
    assert data["exit_code"] == 0
    work_dir = Path(data["work_dir"])
    assert work_dir.is_dir()
    assert work_dir.name == data["key"]
    assert work_dir.resolve().is_relative_to(cache_root.resolve())
    out_file = Path(data["outputs"]["out_file"])
    assert out_file.is_file()
    assert out_file.resolve().is_relative_to(work_dir.resolve())


def test_record_is_valid_json(
    counting_mrcat: Calls, pair: tuple[Path, Path], cache_root: Path
) -> None:
    data = run_json(*concat_args("a.nii", "b.nii"))
    records = list(cache_root.rglob("imcache.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["key"] == records[0].parent.name == data["key"]
    assert record["interface"] == MRCAT
    assert record["argv"][0] == "mrcat"
    assert "-axis" in record["argv"]
    assert record["exit_code"] == 0
    assert record["outputs"]["out_file"]["path"] == "merged.nii"


@pytest.fixture
def link_catalogue(tmp_path: Path) -> Path:
    """`test.Link`: the real `ln -s TARGET made_link`, whose output is the link itself."""
    folder = tmp_path / "catalogue" / "test"
    folder.mkdir(parents=True)
    definition = {
        "name": "ln",
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "make a symbolic link",
        "command-line": "ln -s [TARGET] made_link",
        "inputs": [{"id": "target", "name": "target", "type": "String", "value-key": "[TARGET]"}],
        "output-files": [{"id": "made", "name": "made", "path-template": "made_link"}],
    }
    (folder / "Link.json").write_text(json.dumps(definition))
    return folder.parent


def test_an_output_linking_out_of_the_entry_is_refused(
    link_catalogue: Path, tmp_path: Path, cache_root: Path
) -> None:
    """Issue 13 item 4: the cache keeps only what is inside the entry; a hit must never hand
    back (nor --export chmod) a file somewhere else."""
    outside = tmp_path / "precious.txt"
    outside.write_text("not the cache's\n")
    args = ["--interfaces", str(link_catalogue), "run", "test.Link", "--target", str(outside)]
    result = imcache(*args, "--get", "made")
    assert result.exit_code == 1, result.stderr
    assert "output made (made_link -> " in result.stderr
    assert "symbolic link out of its entry" in result.stderr
    assert result.stdout == ""
    assert not list(cache_root.rglob("imcache.json")), "nothing cached"
    assert [p.name.split(".")[1][:6] for p in cache_root.glob("test.Link/*") if p.is_dir()] == [
        "failed"
    ]

    inside = imcache(*args[:-1], "somewhere/in/the/entry", "--get", "made")
    assert inside.exit_code == 0, "a link inside the entry is an output like any other"


def test_a_list_output_glob_never_matches_imcache_s_own_files(tmp_path: Path) -> None:
    """Issue 13 item 10: `*.txt` matches what the tool (the real cp) wrote, not stdout.txt or
    stderr.txt, which imcache writes in every entry."""
    folder = tmp_path / "catalogue" / "test"
    folder.mkdir(parents=True)
    definition = {
        "name": "cp",
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "copy a file into the entry",
        "command-line": "cp [SOURCE] copied.txt",
        "inputs": [{"id": "source", "name": "source", "type": "File", "value-key": "[SOURCE]"}],
        "output-files": [{"id": "texts", "name": "texts", "path-template": "*.txt", "list": True}],
    }
    (folder / "Copy.json").write_text(json.dumps(definition))
    (tmp_path / "work" / "source.txt").write_text("hello\n")
    data = run_json(
        "--interfaces", str(folder.parent), "run", "test.Copy", "--source", "source.txt"
    )
    assert [Path(p).name for p in data["outputs"]["texts"]] == ["copied.txt"]


def test_an_output_linking_by_absolute_path_into_its_run_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_root: Path
) -> None:
    """Issue 16: the tool runs in a private folder renamed onto the entry once complete, so a
    link by absolute path into that folder would dangle in the entry (a tool writing
    `ln -s "$PWD/out" link`): refused, never a hit on a link to nowhere. The real ln, behind a
    script that names its own working folder, as no real neuroimaging tool does on demand."""
    real_ln = require_tool("ln")
    script = f'#!/bin/sh\necho hi > real.txt\nexec "{real_ln}" -s "$PWD/real.txt" made_link\n'
    first_on_path(tmp_path / "bin", monkeypatch, {"abslink": script})
    folder = tmp_path / "catalogue" / "test"
    folder.mkdir(parents=True)
    definition = {
        "name": "abslink",
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "link an output to another by absolute path",
        "command-line": "abslink",
        "inputs": [],
        "output-files": [{"id": "made", "name": "made", "path-template": "made_link"}],
    }
    (folder / "AbsLink.json").write_text(json.dumps(definition))
    result = imcache("--interfaces", str(folder.parent), "run", "test.AbsLink", "--get", "made")
    assert result.exit_code == 1, result.stderr
    assert "output made (made_link -> " in result.stderr
    assert "symbolic link out of its entry" in result.stderr
    assert result.stdout == ""
    assert not list(cache_root.rglob("imcache.json")), "nothing cached"
