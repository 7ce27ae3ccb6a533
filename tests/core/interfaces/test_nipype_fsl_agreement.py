"""The built-in FSL definitions against the same interfaces resolved from nipype (issue 15,
item 9): for every oracle case of the FSL catalogue, the same `imcache run` words give the same
argv through the built-in definition and through nipype's class, so that the two never drift
apart silently."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

import pytest

from imcache.core.interfaces.arguments import parse_words
from imcache.core.interfaces.nipype_render import nipype_argv
from imcache.core.interfaces.nipype_source import nipype_interface, read_description
from imcache.core.interfaces.values import relevant_env, resolve_values
from tests.core.interfaces import test_fsl_catalogue_a, test_fsl_catalogue_b
from tests.core.interfaces.nipype_oracle import Case, imcache_words, make_files, plan

pytest.importorskip("nipype.interfaces.fsl")

MERGE = [
    Case(
        "merge-t",
        "Merge",
        {"in_files": ["a.nii.gz", "b.nii.gz"], "dimension": "t"},
        ("a.nii.gz", "b.nii.gz"),
    ),
    Case(
        "merge-tr",
        "Merge",
        {"in_files": ["a.nii.gz", "b.nii.gz"], "dimension": "t", "tr": 2.5},
        ("a.nii.gz", "b.nii.gz"),
        output_type="NIFTI",
    ),
]
CASES: list[Case] = [*test_fsl_catalogue_a.CASES, *test_fsl_catalogue_b.CASES, *MERGE]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_builtin_and_nipype_resolved_give_the_same_argv(
    case: Case,
    isolated: Path,
    tmp_path: Path,
    make_nifti: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nipype.interfaces.fsl import Info

    monkeypatch.setenv("FSLOUTPUTTYPE", case.output_type)
    monkeypatch.setattr(Info, "version", classmethod(lambda cls: test_fsl_catalogue_b.FSL_VERSION))
    paths = make_files(case, tmp_path / "data", make_nifti)
    builtin = plan(case, _builtin_words(case, paths), isolated, tmp_path / "base")
    assert builtin.interface.source.endswith(f"catalogue/fsl/{case.interface}.json")

    interface = nipype_interface(f"fsl.{case.interface}")
    assert interface is not None
    refused = read_description(interface.source)["refused"]
    if set(case.inputs) & set(refused):  # a nipype input imcache cannot take as options
        assert all(refused[name] for name in set(case.inputs) & set(refused))
        return
    env = dict(os.environ)
    words = imcache_words(_nipype_case(case, paths), paths)  # op_string: a shell fragment
    values = resolve_values(interface, parse_words(interface, words), env, str(isolated))
    argv, tool_env = nipype_argv(interface, values, relevant_env(interface, env))

    assert argv == builtin.argv
    assert tool_env["FSLOUTPUTTYPE"] == builtin.env_values.get("FSLOUTPUTTYPE", case.output_type)


def _nipype_case(case: Case, paths: Mapping[str, str]) -> Case:
    """nipype's FAST passes no -o unless told (fast then writes beside its input, outside any
    entry); the built-in definition always names it: the case tells nipype the same name."""
    if case.interface == "FAST" and "out_basename" not in case.inputs:
        from nipype.utils.filemanip import split_filename

        stem = split_filename(paths[case.inputs["in_files"][-1]])[1]
        return replace(case, inputs={**case.inputs, "out_basename": stem})
    return case


def _builtin_words(case: Case, paths: Mapping[str, str]) -> list[str]:
    """The words the built-in definition takes for the case (see the two oracle test files)."""
    if case in MERGE:
        return imcache_words(case, paths)
    if case in test_fsl_catalogue_a.CASES:
        inputs = test_fsl_catalogue_a.imcache_inputs(case)
        return imcache_words(replace(case, inputs=inputs), paths)
    return imcache_words(test_fsl_catalogue_b.for_imcache(case, paths), paths)


def test_every_builtin_fsl_definition_is_compared() -> None:
    catalogue = Path(test_fsl_catalogue_a.__file__).parents[3] / "src/imcache/core/interfaces"
    names = {path.stem for path in (catalogue / "catalogue" / "fsl").glob("*.json")}
    assert names == {case.interface for case in CASES}
