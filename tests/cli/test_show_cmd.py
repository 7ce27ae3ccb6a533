"""`imcache show KEY`: one entry's record, logs and outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cache_entries import EntryMaker, ok, ok_json

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def test_show_json(make_entry: EntryMaker) -> None:
    entry = make_entry("merged.nii")
    data = ok_json("show", entry.key[:8])
    assert data["key"] == entry.key
    assert data["argv"][0] == "mrcat"
    assert data["argv"][-1] == "merged.nii"
    assert "-axis" in data["argv"]
    assert data["outputs"]["out_file"]["path"] == "merged.nii"
    assert data["outputs"]["out_file"]["size"] == (entry.path / "merged.nii").stat().st_size
    assert set(data["logs"]) == {"stdout", "stderr"}
    for log in data["logs"].values():
        assert Path(log).is_file() and Path(log).parent == entry.path
    assert data["inputs"]["out_file"] == "'merged.nii'"
    assert ok_json("show", entry.key)["key"] == entry.key

    text = ok("show", entry.key[:8]).stdout
    assert f"key: {entry.key}" in text
    assert "argv: mrcat " in text
