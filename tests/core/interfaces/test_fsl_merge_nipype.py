"""The built-in fsl.Merge renders the same command line as nipype's `fsl.Merge` (the oracle).

FSL itself is not installable here, so the definition is checked against nipype's own `cmdline`
for the same inputs. Both sides get absolute input paths and the same FSLOUTPUTTYPE (set with
monkeypatch, so nipype, which reads `os.environ` when the interface is built, and imcache, which
reads `RunRequest.env`, see the same value).

nipype prints a derived `merged_file` relative to the working folder (`a_merged.nii.gz`), and so
does imcache (relative to its entry folder), so the argv are compared exactly, with no
normalisation at all; only `_list_outputs()` gives an absolute path, and there we compare the
basename.
"""

from __future__ import annotations

import os
import shlex
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from imcache.core.errors import UsageError
from imcache.core.plan import Plan, RunRequest, plan_run

fsl = pytest.importorskip("nipype.interfaces.fsl")


@dataclass(frozen=True)
class Case:
    id: str
    dimension: str
    inputs: tuple[str, ...]
    output_type: str | None  # None: FSLOUTPUTTYPE unset
    tr: float | None = None
    merged_file: str | None = None


CASES = [
    Case("t-two-nifti-gz", "t", ("a.nii.gz", "b.nii.gz"), "NIFTI_GZ"),
    Case("x-one-nifti", "x", ("single.nii",), "NIFTI"),
    Case("y-three-pair", "y", ("s1.nii.gz", "s2.nii.gz", "s3.nii.gz"), "NIFTI_PAIR"),
    Case(
        "z-three-explicit",
        "z",
        ("p.nii", "q.nii", "r.nii"),
        "NIFTI_GZ",
        merged_file="stack_z.nii.gz",
    ),
    Case("a-one-nifti", "a", ("sub-01_run.1_bold.nii.gz",), "NIFTI"),
    Case("tr-2.5-three", "t", ("v1.nii.gz", "v2.nii.gz", "v3.nii.gz"), "NIFTI_GZ", tr=2.5),
    Case(
        "tr-0.72-one-pair-explicit",
        "t",
        ("rest.nii",),
        "NIFTI_PAIR",
        tr=0.72,
        merged_file="rest4d.img",
    ),
    Case("tr-0.72-two-nifti", "t", ("x.nii", "y.nii"), "NIFTI", tr=0.72),
    Case("t-pair-gz", "t", ("m.nii.gz", "n.nii.gz"), "NIFTI_PAIR_GZ"),
]


def _set_output_type(monkeypatch: pytest.MonkeyPatch, output_type: str | None) -> None:
    if output_type is None:
        monkeypatch.delenv("FSLOUTPUTTYPE", raising=False)
    else:
        monkeypatch.setenv("FSLOUTPUTTYPE", output_type)


def _nipype_merge(files: list[Path], case: Case) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "FSLOUTPUTTYPE not set" and "FSL not found" chatter
        merge = fsl.Merge()
    merge.inputs.in_files = [str(f) for f in files]
    merge.inputs.dimension = case.dimension
    if case.tr is not None:
        merge.inputs.tr = case.tr
    if case.merged_file is not None:
        merge.inputs.merged_file = case.merged_file
    return merge


def _imcache_words(files: list[Path], case: Case) -> list[str]:
    words = ["--dimension", case.dimension, "--in-files", *(str(f) for f in files)]
    if case.tr is not None:
        words += ["--tr", repr(case.tr)]
    if case.merged_file is not None:
        words += ["--merged-file", case.merged_file]
    return words


def _plan(words: list[str], cwd: Path, tmp_path: Path) -> Plan:
    return plan_run(
        RunRequest(
            interface="fsl.Merge",
            words=words,
            base_dir=str(tmp_path / "base"),
            cwd=str(cwd),
            env=dict(os.environ),
        )
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_argv_matches_nipype(
    case: Case,
    make_nifti: Callable[..., Path],
    isolated: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set_output_type(monkeypatch, case.output_type)
    files = [make_nifti(name, seed=i).resolve() for i, name in enumerate(case.inputs)]
    merge = _nipype_merge(files, case)

    plan = _plan(_imcache_words(files, case), isolated, tmp_path)

    # Exact comparison: nipype's relative output name and absolute inputs, word for word.
    expected = shlex.split(merge.cmdline)  # type: ignore[attr-defined]
    assert plan.argv == expected
    assert [word for word in plan.argv if os.path.isabs(word)] == [str(f) for f in files]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_output_name_matches_nipype(
    case: Case,
    make_nifti: Callable[..., Path],
    isolated: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _set_output_type(monkeypatch, case.output_type)
    files = [make_nifti(name, seed=i).resolve() for i, name in enumerate(case.inputs)]
    merge = _nipype_merge(files, case)
    nipype_out = merge._list_outputs()["merged_file"]  # type: ignore[attr-defined]

    plan = _plan(_imcache_words(files, case), isolated, tmp_path)

    by_name = {out.spec.label: out.path for out in plan.outputs}
    assert by_name["merged_file"] == os.path.basename(nipype_out)
    # The output lives in the entry folder: a bare name, never a path out of it.
    assert "/" not in by_name["merged_file"]


def test_tr_with_dimension_x_is_refused(
    make_nifti: Callable[..., Path], isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FSLOUTPUTTYPE", "NIFTI_GZ")
    files = [make_nifti("a.nii.gz").resolve(), make_nifti("b.nii.gz", seed=1).resolve()]
    case = Case("tr-x", "x", ("a.nii.gz", "b.nii.gz"), "NIFTI_GZ", tr=2.5)

    merge = _nipype_merge(files, case)
    with pytest.raises(ValueError):
        _ = merge.cmdline  # type: ignore[attr-defined]

    with pytest.raises(UsageError) as caught:
        _plan(_imcache_words(files, case), isolated, tmp_path)
    message = str(caught.value)
    assert "--tr" in message and "--dimension" in message
    assert caught.value.exit_code == 2


def test_unset_output_type_uses_the_declared_default(
    make_nifti: Callable[..., Path], isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset FSLOUTPUTTYPE: imcache takes the definition's declared default, NIFTI_GZ (what FSL's
    own fsl.sh sets). This is the one place where nipype is no oracle: it warns and falls back to
    NIFTI, so the two differ by design and the unset case is left out of the comparisons above."""
    monkeypatch.delenv("FSLOUTPUTTYPE", raising=False)
    files = [make_nifti("u.nii.gz").resolve(), make_nifti("w.nii.gz", seed=1).resolve()]
    plan = _plan(_imcache_words(files, Case("unset", "t", (), None)), isolated, tmp_path)
    assert plan.argv == ["fslmerge", "-t", "u_merged.nii.gz", *(str(f) for f in files)]
    assert plan.env_values == {"FSLOUTPUTTYPE": "NIFTI_GZ"}


def test_output_type_changes_the_key(
    make_nifti: Callable[..., Path], isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FSLOUTPUTTYPE is declared as relevant: the same inputs under another type never hit."""
    files = [make_nifti("a.nii.gz").resolve()]
    case = Case("key", "t", ("a.nii.gz",), None, merged_file="out.nii.gz")
    keys = set()
    for output_type in ("NIFTI", "NIFTI_GZ", "NIFTI_PAIR"):
        monkeypatch.setenv("FSLOUTPUTTYPE", output_type)
        keys.add(_plan(_imcache_words(files, case), isolated, tmp_path).key)
    assert len(keys) == 3


def test_unknown_output_type_is_refused(
    make_nifti: Callable[..., Path], isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FSLOUTPUTTYPE", "ANALYZE")
    files = [make_nifti("a.nii.gz").resolve()]
    with pytest.raises(UsageError, match="FSLOUTPUTTYPE"):
        _plan(_imcache_words(files, Case("bad", "t", ("a.nii.gz",), "ANALYZE")), isolated, tmp_path)
