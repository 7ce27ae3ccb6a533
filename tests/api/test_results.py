"""Results (api/results.py): read-only outputs by attribute and by name, the entry's facts, and
export as the CLI's --export does it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import imcache
from imcache.api import Memory
from imcache.api.results import Outputs
from tests.api.conftest import MRCAT

Calls = Callable[[], int]


def test_outputs_are_read_only_with_both_kinds_of_access() -> None:
    outputs = Outputs({"out_file": "/e/concatenated.mif", "parts": ["/e/1", "/e/2"]})
    assert outputs.out_file == outputs["out_file"] == "/e/concatenated.mif"
    assert dict(outputs) == {"out_file": "/e/concatenated.mif", "parts": ["/e/1", "/e/2"]}
    assert "out_file" in dir(outputs)
    with pytest.raises(AttributeError, match="read-only"):
        outputs.out_file = "x"
    with pytest.raises(AttributeError, match="produced: out_file, parts"):
        _ = outputs.merged_file
    with pytest.raises(TypeError):
        outputs["out_file"] = "x"  # type: ignore[index]


def test_a_result_tells_where_and_how(counting_mrcat: Calls, pair: list[str]) -> None:
    res = Memory().cache(MRCAT)(in_files=pair, axis=3)
    assert res.exit_code == 0 and not res.cached
    assert res.argv[:3] == ["mrcat", "-axis", "3"]
    assert Path(res.work_dir).name == res.key and len(res.key) == 32
    assert Path(res.stdout_path).parent == Path(res.stderr_path).parent == Path(res.work_dir)
    assert Path(res.stderr_path).is_file()
    assert res.seconds is not None and res.seconds >= 0
    assert res.extra_files == []
    assert repr(res).startswith(f"Result(mrtrix3.MRCat, key={res.key[:12]}, ran")


def test_export_does_what_the_clis_export_does(
    counting_mrcat: Calls, pair: list[str], isolated: Path
) -> None:
    res = Memory().cache(MRCAT)(in_files=pair)
    how = res.export("out_file", "results/merged.mif")
    target = isolated / "results" / "merged.mif"
    assert (
        how in ("hard link", "copy")
        and target.read_bytes() == Path(str(res.outputs.out_file)).read_bytes()
    )
    if how == "hard link":  # shared bytes: the entry's file is made read-only first
        assert os.stat(str(res.outputs.out_file)).st_mode & 0o222 == 0
    target.unlink()  # another file there now (writing in place would change the entry's too)
    target.write_bytes(b"someone else's")
    with pytest.raises(imcache.ImcacheError, match="overwrite"):
        res.export("out_file", target)
    assert res.export("out_file", target, overwrite=True) in ("hard link", "copy")
    with pytest.raises(imcache.UsageError, match="no output 'nope'"):
        res.export("nope", "x")
