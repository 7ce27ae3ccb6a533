"""The one "did you mean": the known names closest to a misspelt one."""

from __future__ import annotations

import subprocess
import sys

from imcache.core.suggest import did_you_mean


def test_the_closest_name_comes_first() -> None:
    assert did_you_mean("optinal", {"optional", "options", "list"}) == ["optional"]
    assert did_you_mean("--in-filez", ["--out-file", "--in-files"]) == ["--in-files"]


def test_nothing_close_is_no_suggestion() -> None:
    assert did_you_mean("zzz", {"optional", "list"}) == []
    assert did_you_mean("x", []) == []


def test_up_to_n_names() -> None:
    names = {"fsl.Merge", "fsl.Merged", "fsl.Merger", "fsl.BET"}
    two = did_you_mean("fsl.Merg", names, n=2)
    assert two[0] == "fsl.Merge" and len(two) == 2
    assert set(did_you_mean("fsl.Merg", names, n=3)) == names - {"fsl.BET"}


def test_a_name_in_another_case_comes_first_when_asked() -> None:
    names = {"fsl.Merge", "fsl.BET"}
    assert did_you_mean("FSL.MERGE", names, n=3) == []  # too far for difflib
    assert did_you_mean("FSL.MERGE", names, n=3, any_case=True) == ["fsl.Merge"]
    assert did_you_mean("fsl.merge", names, n=3, any_case=True) == ["fsl.Merge"]  # not twice


def test_difflib_waits_for_a_mistake() -> None:
    probe = "import sys, imcache.core.suggest; print('difflib' in sys.modules)"
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert found.stdout.strip() == "False", found.stderr
