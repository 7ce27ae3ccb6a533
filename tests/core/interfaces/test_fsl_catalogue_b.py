"""The built-in fsl.IsotropicSmooth, Threshold, ApplyMask, BinaryMaths, FAST, MCFLIRT, SUSAN,
SliceTimer and ConvertXFM render nipype's own `cmdline` and name nipype's outputs (the oracle).

Every case builds the same job through nipype's class and through imcache's `plan_run` (with the
shared harness, `nipype_oracle`) and checks:

- the argv, word for word, against nipype's `cmdline`;
- every output either side names: each one nipype's `_list_outputs()` names, imcache names at the
  same path (a list output's glob, matched against a folder holding every file nipype names, finds
  exactly nipype's list), and each output imcache requires, nipype names.

Two adaptations, each for a reason of nipype's, not of the definitions (and one difference,
tested on its own: MCFLIRT's images under NIFTI_PAIR_GZ, see the last test):

- nipype's FAST without out_basename lets fast write beside its input (nipype names its outputs in
  the input's folder); imcache's outputs live in the entry folder, so it passes `-o <input stem>`.
  Its argv is compared with nipype's for the same job with out_basename set to that stem, and its
  outputs with nipype's names, relative to the input's folder.
- nipype's MCFLIRT names mean_img, variance_img and std_img from FSL's version (`Info.version()`),
  which is None here: nipype is told FSL 6.0.7, the version the definitions follow.
"""

from __future__ import annotations

import glob
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from imcache.core.errors import UsageError
from imcache.core.plan import Plan
from tests.core.interfaces.nipype_oracle import (
    Case,
    check_help,
    imcache_words,
    make_files,
    nipype_argv,
    nipype_interface,
    plan,
)

pytest.importorskip("nipype.interfaces.fsl")

MINE = (
    "IsotropicSmooth",
    "Threshold",
    "ApplyMask",
    "BinaryMaths",
    "FAST",
    "MCFLIRT",
    "SUSAN",
    "SliceTimer",
    "ConvertXFM",
)
FSL_VERSION = "6.0.7"  # the FSL whose output names the definitions follow (MCFLIRT)

# What the definition language cannot say yet (see the report): each xfail names it.


def fsl_cases() -> Iterator[Case]:
    """Three to five cases per interface: input combinations under each FSLOUTPUTTYPE."""
    yield from _isotropic_smooth_cases()
    yield from _threshold_cases()
    yield from _apply_mask_cases()
    yield from _binary_maths_cases()
    yield from _fast_cases()
    yield from _mcflirt_cases()
    yield from _susan_cases()
    yield from _slicetimer_cases()
    yield from _convert_xfm_cases()


def _isotropic_smooth_cases() -> Iterator[Case]:
    # --- IsotropicSmooth: fslmaths [-dt T] IN [-nan] -s SIGMA OUT [-odt T] -----------------------
    yield Case(
        "iso-sigma-gz", "IsotropicSmooth", {"in_file": "t1.nii.gz", "sigma": 2.0}, ("t1.nii.gz",)
    )
    yield Case(
        "iso-fwhm-nifti",
        "IsotropicSmooth",
        {"in_file": "bold.nii", "fwhm": 6.0},
        ("bold.nii",),
        output_type="NIFTI",
    )
    yield Case(
        "iso-sigma-types-explicit-pair",
        "IsotropicSmooth",
        {
            "in_file": "t1.nii.gz",
            "sigma": 1.5,
            "internal_datatype": "double",
            "output_datatype": "float",
            "nan2zeros": True,
            "out_file": "s.nii.gz",
        },
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR",
    )
    yield Case(
        "iso-fwhm-int-pair-gz",
        "IsotropicSmooth",
        {"in_file": "sub-01_T1w.nii.gz", "fwhm": 4},
        ("sub-01_T1w.nii.gz",),
        output_type="NIFTI_PAIR_GZ",
    )


def _threshold_cases() -> Iterator[Case]:
    # --- Threshold: fslmaths [-dt T] IN [-nan] -[u]thr[p|P] VALUE OUT [-odt T] -------------------
    yield Case(
        "thr-plain-gz", "Threshold", {"in_file": "t1.nii.gz", "thresh": 10.5}, ("t1.nii.gz",)
    )
    yield Case(
        "thr-above-nifti",
        "Threshold",
        {"in_file": "t1.nii", "thresh": 3, "direction": "above"},
        ("t1.nii",),
        output_type="NIFTI",
    )
    yield Case(
        "thr-robust-pair",
        "Threshold",
        {"in_file": "t1.nii.gz", "thresh": 20.0, "use_robust_range": True},
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR",
    )
    yield Case(
        "thr-nonzero-above-types-explicit-pair-gz",
        "Threshold",
        {
            "in_file": "t1.nii.gz",
            "thresh": 50.0,
            "direction": "above",
            "use_robust_range": True,
            "use_nonzero_voxels": True,
            "internal_datatype": "float",
            "output_datatype": "int",
            "nan2zeros": True,
            "out_file": "mask.nii.gz",
        },
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR_GZ",
    )
    yield Case(
        "thr-below-given-gz",
        "Threshold",
        {"in_file": "t1.nii.gz", "thresh": 1.0, "direction": "below"},
        ("t1.nii.gz",),
    )


def _apply_mask_cases() -> Iterator[Case]:
    # --- ApplyMask: fslmaths [-dt T] IN [-nan] -mas MASK OUT [-odt T] ----------------------------
    yield Case(
        "mask-gz",
        "ApplyMask",
        {"in_file": "t1.nii.gz", "mask_file": "brain_mask.nii.gz"},
        ("t1.nii.gz", "brain_mask.nii.gz"),
    )
    yield Case(
        "mask-nan-explicit-nifti",
        "ApplyMask",
        {"in_file": "t1.nii", "mask_file": "m.nii", "nan2zeros": True, "out_file": "brain.nii"},
        ("t1.nii", "m.nii"),
        output_type="NIFTI",
    )
    yield Case(
        "mask-types-pair",
        "ApplyMask",
        {
            "in_file": "bold.nii.gz",
            "mask_file": "m.nii.gz",
            "internal_datatype": "float",
            "output_datatype": "short",
        },
        ("bold.nii.gz", "m.nii.gz"),
        output_type="NIFTI_PAIR",
        shapes={"bold.nii.gz": (4, 4, 3, 2)},
    )
    yield Case(
        "mask-pair-gz",
        "ApplyMask",
        {"in_file": "t1.nii.gz", "mask_file": "m.nii.gz"},
        ("t1.nii.gz", "m.nii.gz"),
        output_type="NIFTI_PAIR_GZ",
    )


def _binary_maths_cases() -> Iterator[Case]:
    # --- BinaryMaths: fslmaths [-dt T] IN [-nan] -OP (FILE | VALUE) OUT [-odt T] -----------------
    yield Case(
        "bin-add-file-gz",
        "BinaryMaths",
        {"in_file": "a.nii.gz", "operation": "add", "operand_file": "b.nii.gz"},
        ("a.nii.gz", "b.nii.gz"),
    )
    yield Case(
        "bin-mul-value-nifti",
        "BinaryMaths",
        {"in_file": "a.nii", "operation": "mul", "operand_value": 2.5},
        ("a.nii",),
        output_type="NIFTI",
    )
    yield Case(
        "bin-sub-negative-explicit-pair",
        "BinaryMaths",
        {"in_file": "a.nii.gz", "operation": "sub", "operand_value": -1, "out_file": "d.nii.gz"},
        ("a.nii.gz",),
        output_type="NIFTI_PAIR",
    )
    yield Case(
        "bin-max-file-types-pair-gz",
        "BinaryMaths",
        {
            "in_file": "a.nii.gz",
            "operation": "max",
            "operand_file": "b.nii",
            "internal_datatype": "double",
            "output_datatype": "float",
            "nan2zeros": True,
        },
        ("a.nii.gz", "b.nii"),
        output_type="NIFTI_PAIR_GZ",
    )
    yield Case(
        "bin-rem-value-gz",
        "BinaryMaths",
        {"in_file": "a.nii.gz", "operation": "rem", "operand_value": 3},
        ("a.nii.gz",),
    )


def _fast_cases() -> Iterator[Case]:
    # --- FAST: fast [options in the order of nipype's input names] -S 1 IN ----------------------
    yield Case("fast-plain-gz", "FAST", {"in_files": ["t1_brain.nii.gz"]}, ("t1_brain.nii.gz",))
    yield Case(
        "fast-outputs-nifti",
        "FAST",
        {
            "in_files": ["t1_brain.nii"],
            "number_classes": 2,
            "segments": True,
            "probability_maps": True,
            "output_biasfield": True,
            "output_biascorrected": True,
        },
        ("t1_brain.nii",),
        output_type="NIFTI",
    )
    yield Case(
        "fast-base-options-pair",
        "FAST",
        {
            "in_files": ["t2_brain.nii.gz"],
            "out_basename": "fast_",
            "img_type": 2,
            "bias_iters": 5,
            "bias_lowpass": 10,
            "init_seg_smooth": 0.05,
            "hyper": 0.2,
            "mixel_smooth": 0.25,
            "segment_iters": 20,
            "iters_afterbias": 6,
            "no_bias": True,
            "verbose": True,
            "segments": True,
        },
        ("t2_brain.nii.gz",),
        output_type="NIFTI_PAIR",
    )
    yield Case(
        "fast-priors-nopve-pair-gz",
        "FAST",
        {
            "in_files": ["t1_brain.nii.gz"],
            "init_transform": "std2in.mat",
            "use_priors": True,
            "other_priors": ["csf.nii.gz", "gm.nii.gz", "wm.nii.gz"],
            "manual_seg": "intensities.txt",
            "no_pve": True,
            "probability_maps": True,
        },
        (
            "t1_brain.nii.gz",
            "std2in.mat",
            "csf.nii.gz",
            "gm.nii.gz",
            "wm.nii.gz",
            "intensities.txt",
        ),
        output_type="NIFTI_PAIR_GZ",
    )
    yield Case(
        "fast-two-channels-gz",
        "FAST",
        {"in_files": ["t1_brain.nii.gz", "t2_brain.nii.gz"], "output_biascorrected": True},
        ("t1_brain.nii.gz", "t2_brain.nii.gz"),
    )


def _mcflirt_cases() -> Iterator[Case]:
    # --- MCFLIRT: mcflirt -in IN [options in the order of nipype's input names] ------------------
    bold = {"bold.nii.gz": (4, 4, 3, 3)}
    yield Case("mcf-plain-gz", "MCFLIRT", {"in_file": "bold.nii.gz"}, ("bold.nii.gz",), shapes=bold)
    yield Case(
        "mcf-outputs-nifti",
        "MCFLIRT",
        {
            "in_file": "bold.nii.gz",
            "mean_vol": True,
            "stats_imgs": True,
            "save_mats": True,
            "save_plots": True,
            "save_rms": True,
        },
        ("bold.nii.gz",),
        output_type="NIFTI",
        shapes=bold,
    )
    yield Case(
        "mcf-options-explicit-pair",
        "MCFLIRT",
        {
            "in_file": "bold.nii.gz",
            "out_file": "moco.nii",
            "cost": "normmi",
            "bins": 128,
            "dof": 12,
            "ref_vol": 1,
            "scaling": 6.0,
            "smooth": 1.5,
            "rotation": 2,
            "stages": 4,
            "use_gradient": True,
            "use_contour": True,
            "stats_imgs": True,
        },
        ("bold.nii.gz",),
        output_type="NIFTI_PAIR",
        shapes=bold,
    )
    yield Case(
        "mcf-ref-init-pair-gz",
        "MCFLIRT",
        {
            "in_file": "bold.nii.gz",
            "ref_file": "ref.nii.gz",
            "init": "init.mat",
            "save_plots": True,
            "save_mats": True,
        },
        ("bold.nii.gz", "ref.nii.gz", "init.mat"),
        output_type="NIFTI_PAIR_GZ",
        shapes=bold,
    )
    yield Case(
        "mcf-interpolation-gz",
        "MCFLIRT",
        {"in_file": "bold.nii.gz", "interpolation": "spline"},
        ("bold.nii.gz",),
        shapes=bold,
    )


def _susan_cases() -> Iterator[Case]:
    # --- SUSAN: susan IN BT SIGMA DIM MEDIAN 0 OUT ------------------------------------------------
    yield Case(
        "susan-gz",
        "SUSAN",
        {"in_file": "t1.nii.gz", "brightness_threshold": 2000.0, "fwhm": 8.0},
        ("t1.nii.gz",),
    )
    yield Case(
        "susan-2d-no-median-nifti",
        "SUSAN",
        {
            "in_file": "t1.nii",
            "brightness_threshold": 150.5,
            "fwhm": 6,
            "dimension": 2,
            "use_median": 0,
        },
        ("t1.nii",),
        output_type="NIFTI",
    )
    yield Case(
        "susan-auto-threshold-explicit-pair",
        "SUSAN",
        {
            "in_file": "t1.nii.gz",
            "brightness_threshold": -1.0,
            "fwhm": 4.5,
            "out_file": "smooth.nii.gz",
        },
        ("t1.nii.gz",),
        output_type="NIFTI_PAIR",
    )
    yield Case(
        "susan-bold-pair-gz",
        "SUSAN",
        {"in_file": "bold.nii.gz", "brightness_threshold": 0.25, "fwhm": 5.0, "dimension": 3},
        ("bold.nii.gz",),
        output_type="NIFTI_PAIR_GZ",
        shapes={"bold.nii.gz": (4, 4, 3, 2)},
    )
    yield Case(
        "susan-usans-gz",
        "SUSAN",
        {
            "in_file": "t1.nii.gz",
            "brightness_threshold": 100.0,
            "fwhm": 5.0,
            "usans": [("mean.nii.gz", 80.0)],
        },
        ("t1.nii.gz", "mean.nii.gz"),
    )
    yield Case(
        "susan-two-usans-nifti",
        "SUSAN",
        {
            "in_file": "t1.nii.gz",
            "brightness_threshold": 50.0,
            "fwhm": 2.5,
            "usans": [("mean.nii.gz", 80.0), ("t2.nii.gz", 12.25)],
        },
        ("t1.nii.gz", "mean.nii.gz", "t2.nii.gz"),
        output_type="NIFTI",
    )


def _slicetimer_cases() -> Iterator[Case]:
    # --- SliceTimer: slicetimer --in=IN [options in the order of nipype's input names] -----------
    bold = {"bold.nii.gz": (4, 4, 3, 3)}
    yield Case(
        "st-plain-gz", "SliceTimer", {"in_file": "bold.nii.gz"}, ("bold.nii.gz",), shapes=bold
    )
    yield Case(
        "st-tr-odd-down-nifti",
        "SliceTimer",
        {
            "in_file": "bold.nii.gz",
            "time_repetition": 2.0,
            "interleaved": True,
            "index_dir": True,
            "slice_direction": 3,
        },
        ("bold.nii.gz",),
        output_type="NIFTI",
        shapes=bold,
    )
    yield Case(
        "st-timings-explicit-pair",
        "SliceTimer",
        {
            "in_file": "bold.nii.gz",
            "custom_timings": "timings.txt",
            "time_repetition": 0.72,
            "slice_direction": 1,
            "out_file": "st.nii.gz",
        },
        ("bold.nii.gz", "timings.txt"),
        output_type="NIFTI_PAIR",
        shapes=bold,
    )
    yield Case(
        "st-order-pair-gz",
        "SliceTimer",
        {"in_file": "sub-01_bold.nii", "custom_order": "order.txt", "slice_direction": 2},
        ("sub-01_bold.nii", "order.txt"),
        output_type="NIFTI_PAIR_GZ",
        shapes={"sub-01_bold.nii": (4, 4, 3, 3)},
    )


def _convert_xfm_cases() -> Iterator[Case]:
    # --- ConvertXFM: convert_xfm -omat OUT [-inverse | -concat | -fixscaleskew] [IN2] IN ---------
    yield Case("xfm-invert", "ConvertXFM", {"in_file": "a.mat", "invert_xfm": True}, ("a.mat",))
    yield Case(
        "xfm-concat-nifti",
        "ConvertXFM",
        {"in_file": "epi2t1.mat", "in_file2": "t12mni.mat", "concat_xfm": True},
        ("epi2t1.mat", "t12mni.mat"),
        output_type="NIFTI",
    )
    yield Case(
        "xfm-fix-scale-skew-pair",
        "ConvertXFM",
        {"in_file": "a.mat", "in_file2": "b.mat", "fix_scale_skew": True},
        ("a.mat", "b.mat"),
        output_type="NIFTI_PAIR",
    )
    yield Case(
        "xfm-invert-explicit-pair-gz",
        "ConvertXFM",
        {"in_file": "a.mat", "invert_xfm": True, "out_file": "a_inverse.mat"},
        ("a.mat",),
        output_type="NIFTI_PAIR_GZ",
    )
    yield Case("xfm-no-operation", "ConvertXFM", {"in_file": "a.mat"}, ("a.mat",))


CASES = list(fsl_cases())
XFAILS: dict[str, str] = {}  # case id -> what the definition language cannot say yet
PARAMS = [
    pytest.param(
        case,
        id=case.id,
        marks=[pytest.mark.xfail(strict=True, reason=XFAILS[case.id])] if case.id in XFAILS else [],
    )
    for case in CASES
]


# --- the oracle's side -----------------------------------------------------------------------


def argv_oracle(case: Case, paths: Mapping[str, str]) -> Any:
    """nipype's interface whose cmdline imcache must render (see the FAST note at the top)."""
    if case.interface == "FAST" and "out_basename" not in case.inputs:
        from nipype.utils.filemanip import split_filename

        stem = split_filename(paths[case.inputs["in_files"][-1]])[1]
        case = replace(case, inputs={**case.inputs, "out_basename": stem})
    return nipype_interface(case, paths)


def nipype_named(interface: Any, roots: tuple[Path, ...]) -> dict[str, str | list[str]]:
    """Every output nipype names for this job, relative to the folder it is in."""
    named: dict[str, str | list[str]] = {}
    for name, value in interface._list_outputs().items():
        if isinstance(value, str) and value:
            named[name] = _relative(value, roots)
        elif isinstance(value, list) and value:
            named[name] = [_relative(item, roots) for item in value]
    return named


def _relative(path: str, roots: tuple[Path, ...]) -> str:
    for root in roots:
        if path.startswith(f"{root}{os.sep}"):
            return os.path.relpath(path, root)
    raise AssertionError(f"nipype names {path} outside {[str(r) for r in roots]}")


def write_named(named: Mapping[str, str | list[str]], folder: Path) -> None:
    """What the tool would write: every file nipype names (an .img with its .hdr), and imcache's
    own files, so that each glob is matched against all of them."""
    files = [
        item for value in named.values() for item in ([value] if isinstance(value, str) else value)
    ]
    files += [f[: -len(".img")] + ".hdr" for f in files if f.endswith(".img")]
    files += [f[: -len(".img.gz")] + ".hdr.gz" for f in files if f.endswith(".img.gz")]
    files += ["stdout.txt", "stderr.txt", "imcache.json"]
    for name in files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("")


# --- the check ---------------------------------------------------------------------------------


def for_imcache(case: Case, paths: Mapping[str, str]) -> Case:
    """nipype's SUSAN usans, (image, threshold) pairs, as imcache's sub-command objects."""
    if "usans" not in case.inputs:
        return case
    usans = [
        json.dumps({"image": paths.get(image, image), "brightness_threshold": threshold})
        for image, threshold in case.inputs["usans"]
    ]
    return replace(case, inputs={**case.inputs, "usans": usans})


def both_sides(
    case: Case,
    cwd: Path,
    tmp_path: Path,
    make_nifti: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Plan, list[str], dict[str, str | list[str]]]:
    """imcache's plan, nipype's argv and nipype's named outputs for the same job."""
    from nipype.interfaces.fsl import Info

    monkeypatch.setenv("FSLOUTPUTTYPE", case.output_type)  # nipype and imcache both read it
    monkeypatch.setattr(Info, "version", classmethod(lambda cls: FSL_VERSION))
    data = tmp_path / "data"
    paths = make_files(case, data, make_nifti)
    planned = plan(case, imcache_words(for_imcache(case, paths), paths), cwd, tmp_path / "base")
    argv = nipype_argv(argv_oracle(case, paths), cwd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nipype's LooseVersion chatter
        named = nipype_named(nipype_interface(case, paths), (cwd, data.resolve()))
    return planned, argv, named


def check(
    case: Case,
    cwd: Path,
    tmp_path: Path,
    make_nifti: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planned, argv, named = both_sides(case, cwd, tmp_path, make_nifti, monkeypatch)

    assert planned.argv == argv

    ours = {out.spec.label: out for out in planned.outputs}
    assert set(named) <= set(ours), f"nipype names {sorted(set(named) - set(ours))} too"
    required = {label for label, out in ours.items() if not out.spec.optional}
    assert required <= set(named), f"nipype does not name {sorted(required - set(named))}"

    folder = tmp_path / "written"
    folder.mkdir()
    write_named(named, folder)
    for label, out in ours.items():
        if out.spec.is_list:
            found = sorted(glob.glob(out.path, root_dir=folder))
            assert found == sorted(named.get(label, [])), label
        elif label in named:
            assert out.path == named[label], label


@pytest.mark.parametrize("case", PARAMS)
def test_matches_nipype(
    case: Case,
    isolated: Path,
    tmp_path: Path,
    make_nifti: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    check(case, isolated, tmp_path, make_nifti, monkeypatch)


def test_every_interface_has_three_passing_cases() -> None:
    for name in MINE:
        passing = [c for c in CASES if c.interface == name and c.id not in XFAILS]
        assert len(passing) >= 3, f"fsl.{name} has {len(passing)} passing cases"
        types = {c.output_type for c in passing}
        assert len(types) >= 3, f"fsl.{name} is tried under {sorted(types)} only"


@pytest.mark.parametrize("name", MINE)
def test_help_lists_inputs_and_outputs(name: str) -> None:
    check_help(name)


# Jobs that nipype refuses (xor, requires) are refused by imcache too, before anything runs.
REFUSED = [
    Case("iso-both-sizes", "IsotropicSmooth", {"in_file": "t.nii.gz", "sigma": 1.0, "fwhm": 2.0}),
    Case("iso-no-size", "IsotropicSmooth", {"in_file": "t.nii.gz"}),
    Case(
        "bin-both-operands",
        "BinaryMaths",
        {"in_file": "t.nii.gz", "operation": "add", "operand_file": "t.nii.gz", "operand_value": 1},
    ),
    Case("bin-no-operand", "BinaryMaths", {"in_file": "t.nii.gz", "operation": "add"}),
    Case(
        "xfm-invert-and-concat",
        "ConvertXFM",
        {"in_file": "a.mat", "in_file2": "a.mat", "invert_xfm": True, "concat_xfm": True},
    ),
    Case("xfm-concat-alone", "ConvertXFM", {"in_file": "a.mat", "concat_xfm": True}),
    Case(
        "thr-nonzero-alone",
        "Threshold",
        {"in_file": "t.nii.gz", "thresh": 5.0, "use_nonzero_voxels": True},
    ),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_like_nipype(
    case: Case,
    isolated: Path,
    tmp_path: Path,
    make_nifti: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FSLOUTPUTTYPE", "NIFTI_GZ")
    case = replace(case, files=("t.nii.gz", "a.mat"))
    paths = make_files(case, tmp_path / "data", make_nifti)

    with pytest.raises((ValueError, OSError)):  # nipype: an xor at once, a requires at cmdline
        _ = nipype_interface(case, paths).cmdline

    with pytest.raises(UsageError) as caught:
        plan(case, imcache_words(case, paths), isolated, tmp_path / "base")
    assert caught.value.exit_code == 2


def test_global_shift_takes_slicetimers_long_option_form(
    isolated: Path, tmp_path: Path, make_nifti: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """nipype's SliceTimer cannot render global_shift (its argstr '--tglobal' has no place for the
    value); imcache renders it as slicetimer's other long options, --tglobal=VALUE."""
    monkeypatch.setenv("FSLOUTPUTTYPE", "NIFTI_GZ")
    case = Case(
        "st-global", "SliceTimer", {"in_file": "b.nii.gz", "global_shift": 0.3}, ("b.nii.gz",)
    )
    paths = make_files(case, tmp_path / "data", make_nifti)

    with pytest.raises(ValueError, match="global_shift"):
        _ = nipype_interface(case, paths).cmdline

    planned = plan(case, imcache_words(case, paths), isolated, tmp_path / "base")
    assert planned.argv == [
        "slicetimer",
        f"--in={paths['b.nii.gz']}",
        "--tglobal=0.300000",
        "--out=b_st.nii.gz",
    ]


def test_mcflirt_images_under_pair_gz_are_named_as_fsl_writes_them(
    isolated: Path, tmp_path: Path, make_nifti: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one place where nipype is no oracle here. Under NIFTI_PAIR_GZ nipype derives MCFLIRT's
    mean, variance and sigma images with split_filename, which does not know `.img.gz`
    (`bold_mcf.img_mean_reg.img.gz`); FSL 6 strips every image extension from -out, so imcache
    names `bold_mcf_mean_reg.img.gz`. The argv and the other outputs still agree."""
    case = Case(
        "mcf-stats-pair-gz",
        "MCFLIRT",
        {"in_file": "bold.nii.gz", "mean_vol": True, "stats_imgs": True, "save_plots": True},
        ("bold.nii.gz",),
        output_type="NIFTI_PAIR_GZ",
        shapes={"bold.nii.gz": (4, 4, 3, 3)},
    )
    planned, argv, named = both_sides(case, isolated, tmp_path, make_nifti, monkeypatch)

    assert planned.argv == argv
    ours = {out.spec.label: out.path for out in planned.outputs}
    assert ours["out_file"] == named["out_file"] == "bold_mcf.img.gz"
    assert ours["par_file"] == named["par_file"] == "bold_mcf.img.gz.par"
    for label, suffix in (
        ("mean_img", "_mean_reg"),
        ("variance_img", "_variance"),
        ("std_img", "_sigma"),
    ):
        assert named[label] == f"bold_mcf.img{suffix}.img.gz"
        assert ours[label] == f"bold_mcf{suffix}.img.gz"
