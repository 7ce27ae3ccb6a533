"""`stats`: entries and bytes per interface, hits, misses and failures from events.log."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from tests.cache_entries import MRCAT, EntryMaker, MakeNifti, disk_bytes, failed_run, ok, ok_json

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def test_stats_counts_hits_and_misses(
    make_entry: EntryMaker, make_nifti: MakeNifti, cache_root: Path
) -> None:
    started = int(time.time())
    x = make_entry("x.nii")  # miss
    y = make_entry("y.nii")  # miss
    for args in (x.args, x.args, y.args):
        assert ok_json(*args)["cached"] is True  # 3 hits
    failed_run(make_nifti, "bad.nii")

    data = ok_json("stats")
    assert data["entries"] == 2
    assert data["bytes"] == disk_bytes(x.path) + disk_bytes(y.path)
    assert data["events"] == {"miss": 2, "hit": 3, "fail": 1}
    assert data["per_interface"] == {
        MRCAT: {"entries": 2, "bytes": data["bytes"], "misses": 2, "hits": 3, "failures": 1}
    }
    since = dt.datetime.fromisoformat(data["since"]).timestamp()
    assert started - 1 <= since <= time.time()

    text = ok("stats").stdout
    assert "hits: 3, misses: 2, failures: 1 since " in text
    assert f"{MRCAT}: 2 entries" in text
