"""What a miss leaves in its entry (core/outputs.py): the outputs it collected and the record.

Real runs of mrcat through `imcache run`, behind the counting wrapper of test_run.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_json
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
