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


def test_a_long_json_listing_is_what_the_encoder_prints(tmp_path: Path) -> None:
    """`ls --json` of more than 1,000 entries writes its rows itself, the inputs spliced in as
    the marks hold them: byte for byte what json.dumps of the rows gives, for marks of ours and
    (each decoded on its own then) for one that is not."""
    import json

    from imcache.cli.ls_cmd import _json_rows
    from imcache.cli.options import entry_json
    from imcache.core.inputs import inputs_of
    from imcache.core.scan import Entry

    def entries(odd: bytes) -> list[Entry]:
        made = []
        for i in range(1500):
            inputs = {"in_file": f"file 'a{i}\\u00e9\"' xxh3:{i:032x}", "n": str(i)}
            summary = json.dumps(inputs).encode() if i != 700 else odd
            folder = tmp_path / 'fsl.\u00e9"x'
            key = f"{i:032x}"
            made.append(Entry(folder.name, key, str(folder / key), i * 10**9, 10**18, i, summary))
        return made

    for odd in (b'{"in_file": "file \'b\' xxh3:00"}', b"not json", b'{"x": 1}'):
        listing = entries(odd)
        rows = [{**entry_json(e), "inputs": inputs_of(e)} for e in listing]
        assert _json_rows(listing) == json.dumps(rows), odd


@pytest.mark.parametrize("fork", [False, True])
def test_parts_do_not_change_how_inputs_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    """How a listing writes inputs is decided over all its entries (an older mark's entry
    anywhere has every entry's inputs encoded anew): what it writes in parts, by one process
    or two, is what it writes in one."""
    import json

    from imcache.cli import options
    from imcache.cli.ls_cmd import _json_parts
    from imcache.core.scan import Entry

    listing = []
    for i in range(1500):
        summary = json.dumps({"in_file": f"a{i}.nii"}).encode()
        if i == 100:
            summary = b'{"in_file":"compact.nii"}'  # valid, not as json.dumps spaces it
        key = f"{i:032x}"
        path = str(tmp_path / "fsl.BET" / key)
        listing.append(Entry("fsl.BET", key, path, i, i, i, None if i == 1400 else summary))
    whole = "".join(_json_parts(listing))
    assert '"inputs": {"in_file": "compact.nii"}' in whole
    monkeypatch.setattr(options, "PART", 64)
    assert "".join(_json_parts(listing, fork=fork)) == whole


def test_a_long_json_listing_is_made_by_two_processes(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than 1,000 entries, in more than one part: the second half of the parts is a
    forked child's, and the listing is what one process makes of them."""
    import json

    from imcache.cli import options
    from imcache.cli.ls_cmd import _json_rows
    from imcache.core.scan import scan
    from imcache.core.store import Store
    from tests.cache_entries import clone_entries, forks_noted

    made = make_entry("a.nii")
    clone_entries(made, 1100)
    monkeypatch.setattr(options, "PART", 100)  # 4,096 rows make a part
    forks = forks_noted(monkeypatch)
    text = ok("ls", "--json").stdout
    assert len(forks) == 1
    rows = json.loads(text)
    assert len(rows) == 1101 and made.key in {row["key"] for row in rows}
    assert text == _json_rows(scan(Store(str(made.path.parent.parent))).entries) + "\n"
