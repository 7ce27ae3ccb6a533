"""The built-in fsl.Split, BET, FLIRT, ApplyXFM, ImageMaths, ImageStats, ExtractROI, Reorient2Std,
MeanImage and Smooth render nipype's own `cmdline` and name nipype's outputs (the oracle).

Most cases go through the shared harness (`nipype_oracle.check_case`) as they are. A few need
one of these, each stated where it is used:

- `op_string` (ImageMaths, ImageStats) is a shell fragment in nipype, which runs its command line
  through a shell; imcache never uses a shell, so there it is a list, one word per value
  (`--op-string -add 5`). ImageStats' `-k %s` in nipype's op_string is imcache's `--mask-file`.
- ExtractROI's `crop_list` is a list of (minimum, size) pairs in nipype, a flat list in imcache.
- nipype's BET passes its input relative to the working folder (a work-around for long paths in
  bet); imcache passes it absolute. A relative word that names an input file is made absolute.
- Split's output is a glob in both: both are matched against the same folder of parts.
- ImageStats' output is fslstats' stdout in imcache; nipype parses it and names no file.

Every case also checks that the outputs nipype names are the outputs imcache names: every one of
nipype's, and no required one that nipype does not name (check_case compares only those both name).
"""

from __future__ import annotations

import glob
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.core.interfaces.nipype_oracle import (
    Case,
    check_case,
    check_help,
    imcache_words,
    make_files,
    nipype_argv,
    nipype_interface,
    nipype_outputs,
    plan,
)

pytest.importorskip("nipype.interfaces.fsl")

MINE = (
    "Split",
    "BET",
    "FLIRT",
    "ApplyXFM",
    "ImageMaths",
    "ImageStats",
    "ExtractROI",
    "Reorient2Std",
    "MeanImage",
    "Smooth",
)

CASES: list[Case] = [
    # --- Split: fslsplit IN [BASE] -DIM --------------------------------------------------------
    Case(
        "split-t-gz",
        "Split",
        {"in_file": "bold.nii.gz", "dimension": "t"},
        ("bold.nii.gz",),
        shapes={"bold.nii.gz": (4, 4, 3, 3)},
    ),
    Case(
        "split-z-base-nifti",
        "Split",
        {"in_file": "t1.nii", "out_base_name": "slice_", "dimension": "z"},
        ("t1.nii",),
        output_type="NIFTI",
    ),
    Case(
        "split-x-pair",
        "Split",
        {"in_file": "t1.nii.gz", "dimension": "x"},
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR",
    ),
    Case(
        "split-y-base-pair-gz",
        "Split",
        {"in_file": "t1.nii.gz", "out_base_name": "part", "dimension": "y"},
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR_GZ",
    ),
    # --- BET: bet IN OUT [options in the order of nipype's input names] -------------------------
    Case("bet-plain-gz", "BET", {"in_file": "t1.nii.gz"}, ("t1.nii.gz",)),
    Case(
        "bet-frac-robust-nifti",
        "BET",
        {"in_file": "sub-01_T1w.nii.gz", "frac": 0.35, "robust": True, "vertical_gradient": -0.1},
        ("sub-01_T1w.nii.gz",),
        output_type="NIFTI",
    ),
    Case(
        "bet-mask-skull-explicit-gz",
        "BET",
        {
            "in_file": "t1.nii",
            "out_file": "brain_anat.nii",
            "mask": True,
            "skull": True,
            "frac": 0.7,
        },
        ("t1.nii",),
    ),
    Case(
        "bet-center-radius-threshold-pair",
        "BET",
        {
            "in_file": "t1.nii.gz",
            "center": [10, 20, 30],
            "radius": 75,
            "threshold": True,
            "functional": True,
        },
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR",
    ),
    Case(
        "bet-mesh-outline-no-output-gz",
        "BET",
        {"in_file": "t1.nii.gz", "mesh": True, "outline": True, "no_output": True, "padding": True},
        ("t1.nii.gz",),
    ),
    Case(
        "bet-surfaces-gz",
        "BET",
        {"in_file": "t1.nii.gz", "surfaces": True, "frac": 0.5},
        ("t1.nii.gz",),
    ),
    Case(
        "bet-t2-guided-remove-eyes-off-gz",
        "BET",
        {"in_file": "t1.nii.gz", "t2_guided": "t2.nii.gz", "out_file": "b.nii.gz"},
        ("t1.nii.gz", "t2.nii.gz"),
    ),
    Case(
        "bet-mask-nifti",
        "BET",
        {"in_file": "t1.nii.gz", "mask": True},
        ("t1.nii.gz",),
        output_type="NIFTI",
    ),
    Case(
        "bet-reduce-bias-gz", "BET", {"in_file": "t1.nii.gz", "reduce_bias": True}, ("t1.nii.gz",)
    ),
    # --- FLIRT: flirt -in -ref -out -omat [options in the order of nipype's input names] --------
    Case(
        "flirt-plain-gz",
        "FLIRT",
        {"in_file": "epi.nii.gz", "reference": "mni.nii.gz"},
        ("epi.nii.gz", "mni.nii.gz"),
    ),
    Case(
        "flirt-dof-cost-search-nifti",
        "FLIRT",
        {
            "in_file": "sub-01_bold.nii",
            "reference": "t1.nii",
            "dof": 6,
            "cost": "corratio",
            "cost_func": "mutualinfo",
            "bins": 640,
            "searchr_x": [-90, 90],
            "searchr_y": [-30, 30],
            "searchr_z": [0, 0],
            "interp": "spline",
        },
        ("sub-01_bold.nii", "t1.nii"),
        output_type="NIFTI",
    ),
    Case(
        "flirt-init-explicit-pair-gz",
        "FLIRT",
        {
            "in_file": "epi.nii.gz",
            "reference": "t1.nii.gz",
            "in_matrix_file": "init.mat",
            "out_file": "epi2t1.nii.gz",
            "out_matrix_file": "epi2t1.mat",
            "no_search": True,
            "coarse_search": 30,
            "fine_search": 6,
            "rigid2D": True,
            "verbose": 1,
        },
        ("epi.nii.gz", "t1.nii.gz", "init.mat"),
        output_type="NIFTI_PAIR_GZ",
    ),
    Case(
        "flirt-applyxfm-qform-sinc-gz",
        "FLIRT",
        {
            "in_file": "epi.nii.gz",
            "reference": "t1.nii.gz",
            "apply_xfm": True,
            "uses_qform": True,
            "interp": "sinc",
            "sinc_width": 7,
            "sinc_window": "hanning",
            "datatype": "float",
            "padding_size": 2,
            "bgvalue": 0.0,
            "no_clamp": True,
        },
        ("epi.nii.gz", "t1.nii.gz"),
    ),
    Case(
        "flirt-isoxfm-weights-pair",
        "FLIRT",
        {
            "in_file": "epi.nii.gz",
            "reference": "t1.nii.gz",
            "apply_isoxfm": 1.5,
            "in_matrix_file": "x.mat",
            "ref_weight": "rw.nii.gz",
            "in_weight": "iw.nii.gz",
            "min_sampling": 2.0,
            "angle_rep": "quaternion",
            "no_resample": True,
            "force_scaling": True,
            "no_resample_blur": True,
            "display_init": True,
        },
        ("epi.nii.gz", "t1.nii.gz", "x.mat", "rw.nii.gz", "iw.nii.gz"),
        output_type="NIFTI_PAIR",
    ),
    Case(
        "flirt-bbr-gz",
        "FLIRT",
        {
            "in_file": "epi.nii.gz",
            "reference": "t1.nii.gz",
            "cost": "bbr",
            "dof": 6,
            "wm_seg": "wm.nii.gz",
            "in_matrix_file": "x.mat",
            "schedule": "bbr.txt",
            "fieldmap": "fmap.nii.gz",
            "fieldmapmask": "fmask.nii.gz",
            "pedir": -2,
            "echospacing": 0.00058,
            "bbrtype": "global_abs",
            "bbrslope": -0.5,
            "wmcoords": "coords.txt",
            "wmnorms": "norms.txt",
        },
        (
            "epi.nii.gz",
            "t1.nii.gz",
            "wm.nii.gz",
            "x.mat",
            "bbr.txt",
            "fmap.nii.gz",
            "fmask.nii.gz",
            "coords.txt",
            "norms.txt",
        ),
    ),
    # --- ApplyXFM: FLIRT with -applyxfm always on ------------------------------------------------
    Case(
        "applyxfm-init-gz",
        "ApplyXFM",
        {"in_file": "epi.nii.gz", "reference": "t1.nii.gz", "in_matrix_file": "epi2t1.mat"},
        ("epi.nii.gz", "t1.nii.gz", "epi2t1.mat"),
    ),
    Case(
        "applyxfm-qform-nn-nifti",
        "ApplyXFM",
        {
            "in_file": "labels.nii.gz",
            "reference": "t1.nii",
            "uses_qform": True,
            "interp": "nearestneighbour",
            "datatype": "int",
        },
        ("labels.nii.gz", "t1.nii"),
        output_type="NIFTI",
    ),
    Case(
        "applyxfm-explicit-pair-gz",
        "ApplyXFM",
        {
            "in_file": "epi.nii.gz",
            "reference": "t1.nii.gz",
            "in_matrix_file": "m.mat",
            "out_file": "epi_in_t1.nii.gz",
            "out_matrix_file": "applied.mat",
            "padding_size": 1,
            "bgvalue": -1.5,
        },
        ("epi.nii.gz", "t1.nii.gz", "m.mat"),
        output_type="NIFTI_PAIR_GZ",
    ),
    # --- ImageMaths: fslmaths IN OP [IN2] [-mas M] OUT [-odt T] ---------------------------------
    Case(
        "maths-add-gz",
        "ImageMaths",
        {"in_file": "t1.nii.gz", "op_string": "-add 5"},
        ("t1.nii.gz",),
    ),
    Case(
        "maths-mul-file2-mask-odt-nifti",
        "ImageMaths",
        {
            "in_file": "a.nii",
            "op_string": "-mul",
            "in_file2": "b.nii.gz",
            "mask_file": "m.nii.gz",
            "out_data_type": "float",
        },
        ("a.nii", "b.nii.gz", "m.nii.gz"),
        output_type="NIFTI",
    ),
    Case(
        "maths-thr-bin-explicit-pair",
        "ImageMaths",
        {"in_file": "t1.nii.gz", "op_string": "-thr 0.5 -bin", "out_file": "mask.nii.gz"},
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR",
    ),
    Case(
        "maths-no-op-pair-gz",
        "ImageMaths",
        {"in_file": "t1.nii.gz"},
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR_GZ",
    ),
    Case(
        "maths-suffix-gz",
        "ImageMaths",
        {"in_file": "t1.nii.gz", "op_string": "-sqrt", "suffix": "_sqrt"},
        ("t1.nii.gz",),
    ),
    # --- ImageStats: fslstats [-t] [-K IDX] IN [-k MASK] OPS, stdout is the output --------------
    Case("stats-mean", "ImageStats", {"in_file": "t1.nii.gz", "op_string": "-M"}, ("t1.nii.gz",)),
    Case(
        "stats-split-mask-nifti",
        "ImageStats",
        {
            "in_file": "bold.nii.gz",
            "op_string": "-k %s -M -l 10 -M",
            "mask_file": "m.nii.gz",
            "split_4d": True,
        },
        ("bold.nii.gz", "m.nii.gz"),
        output_type="NIFTI",
        shapes={"bold.nii.gz": (4, 4, 3, 2)},
    ),
    Case(
        "stats-index-mask-range",
        "ImageStats",
        {"in_file": "t1.nii", "op_string": "-R -p 50", "index_mask_file": "atlas.nii.gz"},
        ("t1.nii", "atlas.nii.gz"),
        output_type="NIFTI_PAIR",
    ),
    # --- ExtractROI: fslroi IN OUT ranges ---------------------------------------------------------
    Case(
        "roi-t-gz",
        "ExtractROI",
        {"in_file": "bold.nii.gz", "t_min": 0, "t_size": 1},
        ("bold.nii.gz",),
        shapes={"bold.nii.gz": (4, 4, 3, 3)},
    ),
    Case(
        "roi-box-explicit-nifti",
        "ExtractROI",
        {
            "in_file": "t1.nii.gz",
            "roi_file": "box.nii",
            "x_min": 1,
            "x_size": 2,
            "y_min": 0,
            "y_size": -1,
            "z_min": 0,
            "z_size": 2,
        },
        ("t1.nii.gz",),
        output_type="NIFTI",
    ),
    Case(
        "roi-crop-list-pair",
        "ExtractROI",
        {"in_file": "bold.nii", "crop_list": [(0, 2), (1, 2), (0, 1), (1, 2)]},
        ("bold.nii",),
        output_type="NIFTI_PAIR",
        shapes={"bold.nii": (4, 4, 3, 3)},
    ),
    Case(
        "roi-all-eight-pair-gz",
        "ExtractROI",
        {
            "in_file": "bold.nii.gz",
            "x_min": 0,
            "x_size": 4,
            "y_min": 0,
            "y_size": 4,
            "z_min": 1,
            "z_size": 1,
            "t_min": 1,
            "t_size": -1,
        },
        ("bold.nii.gz",),
        output_type="NIFTI_PAIR_GZ",
        shapes={"bold.nii.gz": (4, 4, 3, 3)},
    ),
    # --- Reorient2Std: fslreorient2std IN OUT ----------------------------------------------------
    Case("reorient-gz", "Reorient2Std", {"in_file": "t1.nii.gz"}, ("t1.nii.gz",)),
    Case(
        "reorient-nifti",
        "Reorient2Std",
        {"in_file": "sub-01_ses-1_T1w.nii"},
        ("sub-01_ses-1_T1w.nii",),
        output_type="NIFTI",
    ),
    Case(
        "reorient-explicit-pair",
        "Reorient2Std",
        {"in_file": "t1.nii.gz", "out_file": "t1_std.nii.gz"},
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR",
    ),
    # --- MeanImage: fslmaths [-dt T] IN [-nan] -Xmean OUT [-odt T] ------------------------------
    Case(
        "mean-t-gz",
        "MeanImage",
        {"in_file": "bold.nii.gz"},
        ("bold.nii.gz",),
        shapes={"bold.nii.gz": (4, 4, 3, 3)},
    ),
    Case(
        "mean-z-types-nifti",
        "MeanImage",
        {
            "in_file": "t1.nii.gz",
            "dimension": "Z",
            "internal_datatype": "double",
            "output_datatype": "float",
            "nan2zeros": True,
        },
        ("t1.nii.gz",),
        output_type="NIFTI",
    ),
    Case(
        "mean-x-explicit-pair-gz",
        "MeanImage",
        {"in_file": "t1.nii", "dimension": "X", "out_file": "xmean.nii.gz"},
        ("t1.nii",),
        output_type="NIFTI_PAIR_GZ",
    ),
    # --- Smooth: fslmaths IN -kernel gauss S -fmean OUT ------------------------------------------
    Case("smooth-sigma-gz", "Smooth", {"in_file": "bold.nii.gz", "sigma": 2.5}, ("bold.nii.gz",)),
    Case(
        "smooth-sigma-int-nifti",
        "Smooth",
        {"in_file": "t1.nii", "sigma": 3},
        ("t1.nii",),
        output_type="NIFTI",
    ),
    Case(
        "smooth-explicit-pair",
        "Smooth",
        {"in_file": "t1.nii.gz", "sigma": 1.23456, "smoothed_file": "s.nii.gz"},
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR",
    ),
    Case("smooth-fwhm-gz", "Smooth", {"in_file": "t1.nii.gz", "fwhm": 8.0}, ("t1.nii.gz",)),
]

XFAILS: dict[str, str] = {}  # case id -> what the definition language cannot say yet

PARAMS = [
    pytest.param(
        case,
        id=case.id,
        marks=[pytest.mark.xfail(strict=True, reason=XFAILS[case.id])] if case.id in XFAILS else [],
    )
    for case in CASES
]


# --- how a nipype case reaches imcache when its inputs cannot be passed as they are -------------


def imcache_inputs(case: Case) -> dict[str, Any]:
    """nipype's inputs in imcache's terms: shell fragments split into words, pairs flattened."""
    inputs = dict(case.inputs)
    if "op_string" in inputs:
        words = shlex.split(inputs["op_string"])
        if case.interface == "ImageStats" and words[:2] == ["-k", "%s"]:
            words = words[2:]  # imcache renders --mask-file as -k MASK before op_string
        inputs["op_string"] = words
    if "crop_list" in inputs:
        inputs["crop_list"] = [number for pair in inputs["crop_list"] for number in pair]
    return inputs


def needs_adapting(case: Case) -> bool:
    return case.interface in ("BET", "Split", "ImageStats") or imcache_inputs(case) != dict(
        case.inputs
    )


def absolute_inputs(words: list[str], cwd: Path, paths: Mapping[str, str]) -> list[str]:
    """nipype's BET passes its input relative to the working folder: the same file, absolute."""
    files = set(paths.values())
    found = []
    for word in words:
        full = os.path.normpath(os.path.join(cwd, word))
        found.append(full if not os.path.isabs(word) and full in files else word)
    return found


def split_parts(case: Case, cwd: Path) -> None:
    """Write what fslsplit writes into the folder nipype globs, and the files imcache keeps in
    every entry: both globs are then matched against the same folder."""
    from nipype.interfaces.fsl import Info

    axis = "xyzt".index(case.inputs["dimension"])
    shape = case.shapes.get(case.inputs["in_file"], (4, 4, 3))
    count = shape[axis] if axis < len(shape) else 1
    extension = Info.output_type_to_ext(case.output_type)
    base = case.inputs.get("out_base_name", "vol")
    for index in range(count):
        (cwd / f"{base}{index:04d}{extension}").write_text("")
        if extension.startswith(".img"):
            (cwd / f"{base}{index:04d}{extension.replace('.img', '.hdr')}").write_text("")
    for own in ("stdout.txt", "stderr.txt", "imcache.json"):
        (cwd / own).write_text("")


def nipype_named(interface: Any) -> set[str]:
    """The outputs nipype names for this run (a set value; lists too)."""
    return {name for name, value in interface._list_outputs().items() if value}


def check_adapted(
    case: Case,
    cwd: Path,
    tmp_path: Path,
    make_nifti: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """check_case, with the adaptations listed at the top of this file."""
    monkeypatch.setenv("FSLOUTPUTTYPE", case.output_type)
    paths = make_files(case, tmp_path / "data", make_nifti)
    interface = nipype_interface(case, paths)
    words = imcache_words(replace(case, inputs=imcache_inputs(case)), paths)
    planned = plan(case, words, cwd, tmp_path / "base")

    assert planned.argv == absolute_inputs(nipype_argv(interface, cwd), cwd, paths)

    ours = {out.spec.label: out for out in planned.outputs}
    if case.interface == "ImageStats":  # nipype parses stdout and names no file
        assert list(ours) == ["out_stat"]
        assert ours["out_stat"].spec is planned.interface.stdout_output
        return
    if case.interface == "Split":
        split_parts(case, cwd)
        theirs = [os.path.basename(p) for p in interface._list_outputs()["out_files"]]
        assert theirs, "nipype found no parts: the test folder is wrong"
        assert sorted(glob.glob(ours["out_files"].path, root_dir=cwd)) == theirs
        return
    named = nipype_outputs(interface)
    shared = sorted(set(ours) & set(named))
    assert shared
    assert {name: ours[name].path for name in shared} == {name: named[name] for name in shared}


def check_same_outputs(
    case: Case, cwd: Path, tmp_path: Path, make_nifti: Callable[..., Path]
) -> None:
    """Every output nipype names, imcache names; every one imcache requires, nipype names."""
    if case.interface == "ImageStats":
        return  # nipype's ImageStats has no _list_outputs (its output is parsed stdout)
    paths = make_files(case, tmp_path / "data", make_nifti)
    interface = nipype_interface(case, paths)
    words = imcache_words(replace(case, inputs=imcache_inputs(case)), paths)
    planned = plan(case, words, cwd, tmp_path / "base")
    ours = {out.spec.label for out in planned.outputs}
    required = {out.spec.label for out in planned.outputs if not out.spec.optional}
    theirs = nipype_named(interface) if case.interface != "Split" else {"out_files"}
    assert theirs <= ours, f"nipype names {sorted(theirs - ours)} too"
    assert required <= theirs, f"nipype does not name {sorted(required - theirs)}"


@pytest.mark.parametrize("case", PARAMS)
def test_matches_nipype(
    case: Case,
    isolated: Path,
    tmp_path: Path,
    make_nifti: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if needs_adapting(case):
        check_adapted(case, isolated, tmp_path, make_nifti, monkeypatch)
    else:
        check_case(case, isolated, tmp_path, make_nifti, monkeypatch)
    check_same_outputs(case, isolated, tmp_path, make_nifti)


def test_every_interface_has_three_passing_cases() -> None:
    for name in MINE:
        passing = [c for c in CASES if c.interface == name and c.id not in XFAILS]
        assert len(passing) >= 3, f"fsl.{name} has {len(passing)} passing cases"


@pytest.mark.parametrize("name", MINE)
def test_help_lists_inputs_and_outputs(name: str) -> None:
    check_help(name)
