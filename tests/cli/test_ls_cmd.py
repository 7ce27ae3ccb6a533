"""`imcache ls`: every entry with its size, times and inputs; a pattern picks interfaces."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from tests.cache_entries import MRCAT, SECOND_NS, EntryMaker, disk_bytes, ok, ok_json, use_at

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def test_ls_json_lists_entries(make_entry: EntryMaker, cache_root: Path) -> None:
    assert ok_json("ls") == []  # no cache yet
    a, b = make_entry("a.nii"), make_entry("b.nii", shape=(5, 5, 5), seed=2)
    used_ns = (int(time.time()) - 5 * 86400) * SECOND_NS
    use_at(a, used_ns)

    rows = ok_json("ls")
    assert [row["key"] for row in rows] == sorted([a.key, b.key])
    by_key = {row["key"]: row for row in rows}
    for made in (a, b):
        row = by_key[made.key]
        assert {"interface", "key", "bytes", "created", "last_used", "inputs"} <= set(row)
        assert row["interface"] == MRCAT
        assert row["path"] == str(made.path)
        assert row["bytes"] == disk_bytes(made.path)
        created = dt.datetime.fromisoformat(row["created"]).timestamp()
        assert abs(created - time.time()) < 120
        assert row["inputs"]["out_file"] == repr(made.out)
        assert row["inputs"]["in_files"].count(repr(made.args[3])) == 2
    assert dt.datetime.fromisoformat(by_key[a.key]["last_used"]).timestamp() == used_ns / 1e9
    assert by_key[b.key]["last_used"] >= by_key[b.key]["created"]

    assert [row["key"] for row in ok_json("ls", "mrtrix3.*")] == sorted([a.key, b.key])
    assert ok_json("ls", "fsl") == []
    text = ok("ls").stdout.splitlines()
    assert len(text) == 2 and all(MRCAT in line for line in text)
