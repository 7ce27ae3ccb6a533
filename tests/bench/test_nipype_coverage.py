"""The coverage walk over nipype's command-line interfaces (bench/nipype_coverage.py, issue 15,
item 6), sampled to keep it quick: every interface of every package, its --help, its minimal
inputs and its first optional inputs. `python -m bench.nipype_coverage` walks every case."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("nipype")

from bench import nipype_coverage

SUPPORTED = (
    *("fsl", "afni", "ants", "freesurfer", "mrtrix3", "workbench", "dcm2nii", "niftyreg"),
    *("c3", "dtitk", "camino"),
)


def test_ninety_percent_render_identically_and_none_differ(tmp_path: Path) -> None:
    data = nipype_coverage.seed_data(tmp_path / "data")
    packages = nipype_coverage.packages()
    assert set(SUPPORTED) <= set(packages)

    outcomes = [o for p in packages for o in nipype_coverage.check_package(p, data, 2)]
    counts = nipype_coverage.report(outcomes)

    differing = [f"{o.name}: {o.reason}" for o in outcomes if o.status == "differing"]
    assert not differing
    assert all(o.reason for o in outcomes if o.status == "refused")
    identical = sum(c["identical"] for c in counts.values())
    assert identical >= 0.9 * len(outcomes)
    assert len(outcomes) > 500  # every package was walked, not a few
    for package in SUPPORTED:
        assert counts[package]["identical"] > 0, package
