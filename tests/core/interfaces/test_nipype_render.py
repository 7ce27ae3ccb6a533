"""nipype's command lines and outputs on a miss (core/interfaces/nipype_render.py): real MRtrix3
runs of interfaces the built-in catalogue does not have, each a miss then a hit; value outputs
(fsl.ImageStats' out_stat) from the tool's stdout; FSL's output type."""

from __future__ import annotations

import json
import os
import shlex
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from imcache.core.interfaces.registry import BUILTIN
from tests.conftest import first_on_path, imcache, require_tool, run_json, run_ok

pytest.importorskip("nipype")

BVECS = "1 0 0 1 0\n0 1 0 0 1\n0 0 1 0 0\n"
BVALS = "0 1000 1000 0 1000\n"
IDENTITY = "1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n"

# (interface, its inputs; @NAME is a file of the data folder) and the output read back.
REAL = [
    ("mrtrix3.DWIDenoise", ["--in-file", "@dwi.nii.gz"], "out_file", (4, 4, 3, 5)),
    ("mrtrix3.MRDeGibbs", ["--in-file", "@dwi.nii.gz"], "out_file", (4, 4, 3, 5)),
    (
        "mrtrix3.DWIExtract",
        [
            "--in-file",
            "@dwi.nii.gz",
            "--grad-fsl",
            "@bvecs",
            "@bvals",
            "--bzero",
            "--out-file",
            "b0.nii.gz",
        ],
        "out_file",
        (4, 4, 3, 2),
    ),
    (
        "mrtrix3.MRTransform",
        [
            "--in-files",
            "@dwi.nii.gz",
            "--linear-transform",
            "@ident.txt",
            "--out-file",
            "moved.nii.gz",
        ],
        "out_file",
        (4, 4, 3, 5),
    ),
    (
        "mrtrix3.MaskFilter",
        ["--in-file", "@mask.nii.gz", "--filter", "dilate", "--out-file", "dilated.nii.gz"],
        "out_file",
        (4, 4, 3),
    ),
]


@pytest.fixture
def data(make_nifti: Callable[..., Path], tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    make_nifti("dwi.nii.gz", shape=(4, 4, 3, 5), folder=folder)
    make_nifti("mask.nii.gz", seed=3, folder=folder)
    (folder / "bvecs").write_text(BVECS)
    (folder / "bvals").write_text(BVALS)
    (folder / "ident.txt").write_text(IDENTITY)
    return folder


def _words(words: list[str], data: Path) -> list[str]:
    return [str(data / w[1:]) if w.startswith("@") else w for w in words]


def _counting(tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    real = require_tool(tool)
    counter = tmp_path / f"{tool}-calls"
    script = f'#!/bin/sh\necho x >> "{counter}"\nexec "{real}" "$@"\n'
    first_on_path(tmp_path / "bin", monkeypatch, {tool: script})
    return counter


@pytest.mark.parametrize(("name", "words", "output", "shape"), REAL, ids=[r[0] for r in REAL])
def test_real_mrtrix3_run_misses_then_hits(
    name: str,
    words: list[str],
    output: str,
    shape: tuple[int, ...],
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import nibabel as nib

    package, _, tool_class = name.partition(".")
    assert not (Path(BUILTIN) / package / f"{tool_class}.json").exists()  # nipype's, not ours
    tool = _nipype_command(name)
    counter = _counting(tool, tmp_path, monkeypatch)
    given = _words(words, data)

    first = run_json("run", name, *given)
    second = run_json("run", name, *given)

    assert (first["cached"], second["cached"]) == (False, True)
    assert len(counter.read_text().splitlines()) == 1  # the hit did not run the tool
    assert first["key"] == second["key"]
    assert first["argv"] == second["argv"] == _nipype_argv(name, given, Path(first["work_dir"]))
    image = nib.load(second["outputs"][output])
    assert image.shape == shape


def _nipype_command(name: str) -> str:
    from nipype.interfaces import mrtrix3

    return str(getattr(mrtrix3, name.split(".")[1])().cmd).split()[0]


def _nipype_argv(name: str, words: list[str], entry: Path) -> list[str]:
    """nipype's own cmdline for the same inputs, asked in the entry folder."""
    from nipype.interfaces import mrtrix3

    interface = getattr(mrtrix3, name.split(".")[1])()
    option: str | None = None
    values: dict[str, list[str]] = {}
    for word in words:
        if word.startswith("--"):
            option = word[2:].replace("-", "_")
            values[option] = []
        else:
            assert option is not None
            values[option].append(word)
    for key, given in values.items():
        trait = interface.inputs.trait(key)
        if not given:
            setattr(interface.inputs, key, True)
        elif type(trait.trait_type).__name__ == "Tuple":
            setattr(interface.inputs, key, tuple(given))
        elif (
            "List" in type(trait.trait_type).__name__ or "Multi" in type(trait.trait_type).__name__
        ):
            setattr(interface.inputs, key, given)
        else:
            setattr(interface.inputs, key, given[0])
    before = os.getcwd()
    os.chdir(entry)
    try:
        line = interface.cmdline
    finally:
        os.chdir(before)
    return [word.replace(f"{entry}{os.sep}", "") for word in shlex.split(line)]


def test_value_outputs_come_from_stdout_and_stay_in_the_record(
    make_nifti: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """afni.BrickStat's min_val is a number nipype parses from the tool's stdout (as
    fsl.ImageStats' out_stat, which the built-in catalogue has): kept in the record, printed by
    --json and --get, the same on a hit."""
    counter = tmp_path / "calls"
    script = f'#!/bin/sh\necho x >> "{counter}"\necho "2.5"\n'
    first_on_path(tmp_path / "bin", monkeypatch, {"3dBrickStat": script})
    image = make_nifti("t1.nii.gz")
    words = ("run", "afni.BrickStat", "--in-file", str(image), "--min")

    first = run_json(*words)
    listed = run_ok(*words)
    value = run_ok(*words, "--get", "min_val")
    again = run_json(*words)

    assert first["outputs"]["min_val"] == again["outputs"]["min_val"] == 2.5
    assert first["argv"] == again["argv"] == ["3dBrickStat", "-min", str(image)]
    assert "min_val: 2.5" in listed.stdout
    assert value.stdout.strip() == "2.5"
    assert len(counter.read_text().splitlines()) == 1
    record = json.loads((Path(first["work_dir"]) / "imcache.json").read_text())
    assert record["outputs"]["min_val"] == {"value": 2.5}


def test_fsl_output_type_names_outputs_and_sets_fsloutputtype(
    make_nifti: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_nifti("t1.nii.gz")
    report = json.loads(
        run_ok(
            "run", "fsl.ImageMeants", "--in-file", str(image), "--output-type", "NIFTI",
            "--dry-run", "--json",
        ).stdout
    )  # fmt: skip
    gz = json.loads(
        run_ok("run", "fsl.ImageMeants", "--in-file", str(image), "--dry-run", "--json").stdout
    )

    assert report["argv"][0] == "fslmeants"
    assert report["key"] != gz["key"]  # the output type enters the key
    assert "input.output_type = 'NIFTI'" in report["key_fields"]
    assert "env.FSLOUTPUTTYPE = 'NIFTI_GZ'" in gz["key_fields"]


def test_dry_run_prints_nipypes_command_line(
    make_nifti: Callable[..., Path], tmp_path: Path
) -> None:
    """The issue's first 'done when': fsl.ImageMeants --dry-run prints nipype's cmdline."""
    from nipype.interfaces import fsl

    image = make_nifti("x.nii.gz", folder=tmp_path / "data")
    mask = make_nifti("m.nii.gz", seed=1, folder=tmp_path / "data")
    shown = run_ok(
        "run", "fsl.ImageMeants", "--in-file", str(image), "--mask", str(mask), "--dry-run"
    ).stdout

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = fsl.ImageMeants(in_file=str(image), mask=str(mask), output_type="NIFTI_GZ")
        line = theirs.cmdline
    argv_line = next(row for row in shown.splitlines() if row.startswith("argv:"))
    expected = [w.replace(f"{os.getcwd()}{os.sep}", "") for w in shlex.split(line)]
    assert shlex.split(argv_line.partition(":")[2]) == expected


def test_nipype_refuses_inputs_its_spec_forbids_with_one_line(
    make_nifti: Callable[..., Path], tmp_path: Path
) -> None:
    """A rule only nipype's cmdline knows (DWIDenoise's -fslgrad takes bvecs and bvals, given
    as two inputs) still ends in exit 2 and one line, nothing run."""
    image = make_nifti("x.nii.gz")
    bvecs = tmp_path / "bvecs"
    bvecs.write_text(BVECS)
    result = imcache("run", "mrtrix3.DWIDenoise", "--in-file", str(image), "--in-bvec", str(bvecs))

    assert result.exit_code == 2
    assert result.stderr.startswith("imcache: error: mrtrix3.DWIDenoise: nipype refuses")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "base" / "imcache_mem" / "mrtrix3.DWIDenoise").exists()
