"""Planning a run (core/plan.py): what enters the key, and finding the tool on PATH.

The key's tests run the real mrcat through `imcache run` behind the counting wrapper of
test_run.py, so "it hit" is a fact read from a counter.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from imcache.core.plan import which
from tests.conftest import first_on_path, imcache, run_json, run_ok
from tests.core.test_run import Calls, MakeNifti, concat_args, entry_folders


@pytest.fixture
def pair(make_nifti: MakeNifti) -> tuple[Path, Path]:
    """Two different (4, 4, 3) volumes, a.nii and b.nii, in the working folder."""
    return make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)


def test_changed_input_content_misses(
    counting_mrcat: Calls, pair: tuple[Path, Path], make_nifti: MakeNifti
) -> None:
    first = run_json(*concat_args("a.nii", "b.nii"))
    assert counting_mrcat() == 1
    size = pair[0].stat().st_size

    make_nifti("a.nii", seed=99)  # same name, same size, other voxels
    assert pair[0].stat().st_size == size
    second = run_json(*concat_args("a.nii", "b.nii"))
    assert counting_mrcat() == 2
    assert second["cached"] is False
    assert second["key"] != first["key"]


def test_same_content_elsewhere_hits(
    counting_mrcat: Calls,
    pair: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = run_json(*concat_args("a.nii", "b.nii"))
    assert counting_mrcat() == 1

    other = tmp_path / "another" / "checkout"
    other.mkdir(parents=True)
    for source in pair:
        shutil.copy(source, other / source.name)
    monkeypatch.chdir(other)
    second = run_json(*concat_args("a.nii", "b.nii"))
    assert counting_mrcat() == 1, "the same data at another path must hit"
    assert second["cached"] is True
    assert second["key"] == first["key"]


def test_other_basename_same_content_misses(counting_mrcat: Calls, pair: tuple[Path, Path]) -> None:
    first = run_json(*concat_args("a.nii", "b.nii"))
    shutil.copy(pair[0], pair[0].with_name("renamed.nii"))
    second = run_json(*concat_args("renamed.nii", "b.nii"))
    assert counting_mrcat() == 2, "the basename is part of the key"
    assert second["cached"] is False
    assert second["key"] != first["key"]


def test_dry_run_runs_nothing(
    counting_mrcat: Calls, pair: tuple[Path, Path], cache_root: Path
) -> None:
    dry = run_ok(*concat_args("a.nii", "b.nii"), "--dry-run")
    assert counting_mrcat() == 0
    assert entry_folders(cache_root) == []
    assert not cache_root.exists() or not list(cache_root.rglob("*.lock"))
    keys = [line.split()[-1] for line in dry.stdout.splitlines() if line.startswith("key:")]
    assert len(keys) == 1, dry.stdout
    assert "miss" in dry.stdout

    dry_json = run_json(*concat_args("a.nii", "b.nii"), "--dry-run")
    assert counting_mrcat() == 0
    assert dry_json["key"] == keys[0]
    assert dry_json["cached"] is False

    real = run_json(*concat_args("a.nii", "b.nii"))
    assert counting_mrcat() == 1
    assert real["key"] == keys[0]

    after = run_json(*concat_args("a.nii", "b.nii"), "--dry-run")
    assert after["cached"] is True
    assert counting_mrcat() == 1


def _program(path: Path, executable: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755 if executable else 0o644)
    return path


def test_which_finds_what_shutil_which_finds(isolated: Path) -> None:
    _program(isolated / "plain" / "tool", executable=False)  # not executable: passed over
    (isolated / "folder" / "tool").mkdir(parents=True)  # a folder of that name: passed over
    _program(isolated / "bin" / "tool")
    _program(isolated / "here")  # in the working folder
    search = os.pathsep.join(str(isolated / name) for name in ("plain", "folder", "bin"))
    cases = [
        ("tool", search),
        ("tool", str(isolated / "plain")),  # nothing executable there
        ("here", f"{isolated / 'plain'}{os.pathsep}{os.pathsep}{isolated / 'bin'}"),  # "": cwd
        ("./here", search),  # a name with a folder is not looked up on PATH
        ("./tool", search),
        (str(isolated / "bin" / "tool"), ""),
        ("sh", None),  # PATH unset: the default search path
    ]
    for name, path in cases:
        env = {} if path is None else {"PATH": path}
        expected = shutil.which(name, path=path if path is not None else os.defpath)
        assert which(name, env) == expected, (name, path)
    assert which("sh", {}) is not None


def test_an_empty_path_is_the_working_folder_as_for_execvp(isolated: Path) -> None:
    _program(isolated / "here")
    assert shutil.which("here", path="") is None  # where shutil.which differs, on purpose
    assert which("here", {"PATH": ""}) == "here"
    assert which("absent", {"PATH": ""}) is None


def test_a_depends_file_enters_the_key_and_is_watched(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    """`--depends PATH`: a file the tool reads by itself enters the key (not the command line)."""
    config = isolated / "tool.cfg"
    config.write_text("threshold 1\n")
    args = [*concat_args("a.nii", "b.nii"), "--depends", "tool.cfg"]
    first = run_json(*args)
    assert "tool.cfg" not in " ".join(first["argv"])
    assert run_json(*args)["cached"] is True
    assert counting_mrcat() == 1
    config.write_text("threshold 2\n")
    second = run_json(*args)
    assert second["cached"] is False and second["key"] != first["key"]
    assert counting_mrcat() == 2
    without = run_json(*concat_args("a.nii", "b.nii"))
    assert without["key"] not in (first["key"], second["key"])


def test_a_missing_depends_file_is_a_usage_error_naming_it(
    counting_mrcat: Calls, pair: tuple[Path, Path]
) -> None:
    result = imcache(*concat_args("a.nii", "b.nii"), "--depends", "absent.cfg")
    assert result.exit_code == 2
    assert "absent.cfg" in result.stderr and "--depends" in result.stderr
    assert counting_mrcat() == 0


def test_a_depends_file_changed_while_the_tool_runs_is_not_cached(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, make_nifti: MakeNifti
) -> None:
    """The tool rewrites the --depends file as it runs: covered by the input-change check."""
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    config = isolated / "tool.cfg"
    config.write_text("one\n")
    real = shutil.which("mrcat")
    assert real is not None
    script = f'#!/bin/sh\necho two >> "{config}"\nexec "{real}" "$@"\n'
    first_on_path(isolated.parent / "bin", monkeypatch, {"mrcat": script})
    result = imcache(*concat_args("a.nii", "b.nii"), "--depends", "tool.cfg")
    assert result.exit_code == 1
    assert "tool.cfg" in result.stderr and "changed while" in result.stderr
