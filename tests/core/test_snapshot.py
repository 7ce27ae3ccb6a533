"""An interface's snapshot: kept by a scan of a settled folder, believed only while it holds."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from imcache.core import scan as scan_module
from imcache.core import snapshot
from imcache.core.index import index_path, use_line
from imcache.core.layout import INDEX_FOLDER, SNAPSHOT_SUFFIX
from imcache.core.scan import Scan, scan
from imcache.core.store import Store
from tests.cache_entries import MRCAT, EntryMaker, Made, ok, ok_json, use_days_ago

pytestmark = pytest.mark.usefixtures("drop_own_holds")


@pytest.fixture(autouse=True)
def kept_from_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Snapshots for the few entries a test makes (a cache keeps them from 1,000)."""
    monkeypatch.setattr(snapshot, "MIN_ENTRIES", 1)
    monkeypatch.setattr(scan_module, "MIN_ENTRIES", 1)


def _root(made: Made) -> Path:
    return made.path.parent.parent


def _kept(made: Made) -> Path:
    return _root(made) / INDEX_FOLDER / (MRCAT + SNAPSHOT_SUFFIX)


def _settle(made: Made) -> None:
    """The interface folder last changed a minute ago, as a cache between runs."""
    folder = made.path.parent
    past = time.time_ns() - 60 * 10**9
    os.utime(folder, ns=(past, past))


def _two_kept(make_entry: EntryMaker) -> tuple[Made, Made]:
    """Two entries in a settled folder, and the snapshot a scan kept of them."""
    made, other = make_entry("merged.nii"), make_entry("other.nii")
    _settle(made)
    scan(Store(str(_root(made))))
    assert _kept(made).is_file()
    return made, other


def _seen(found: Scan) -> tuple[object, ...]:
    """All a scan found, as a listing or a clear use it."""
    return (
        found.entries,
        found.leftovers,
        found.strays,
        found.orphan_locks,
        sorted(found.linked_locks),
        found.unindexed,
    )


def _scan_unlisted(made: Made) -> Scan:
    """A scan that must not list the interface folder: its snapshot has to serve."""

    def refuse(folder: str) -> None:
        raise AssertionError(f"listed {folder}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scan_module, "_listed", refuse)
        return scan(Store(str(_root(made))))


def _fresh(made: Made) -> Scan:
    """A scan without any snapshot: what the folder and the index say now."""
    kept = _kept(made)
    saved = kept.read_bytes() if kept.exists() else None
    kept.unlink(missing_ok=True)
    try:
        return scan(Store(str(_root(made))))
    finally:
        if saved is not None:
            kept.write_bytes(saved)


def test_a_settled_folder_is_kept_and_the_next_scan_lists_nothing(
    make_entry: EntryMaker,
) -> None:
    made = make_entry("merged.nii")
    make_entry("other.nii")
    (made.path.parent / "notes.txt").write_text("mine")  # a stray, kept as one
    _settle(made)
    first = scan(Store(str(_root(made))))
    assert _kept(made).is_file()
    again = _scan_unlisted(made)
    assert _seen(again) == _seen(first)
    assert [p.endswith("notes.txt") for p in again.strays] == [True]


def test_a_folder_that_changed_just_now_is_not_kept(make_entry: EntryMaker) -> None:
    """Its mtime could be the one a change made in the same tick of the clock would leave."""
    made = make_entry("merged.nii")
    scan(Store(str(_root(made))))
    assert not _kept(made).exists()


def test_an_entry_removed_by_hand_is_not_listed_from_the_snapshot(
    make_entry: EntryMaker,
) -> None:
    made, other = _two_kept(make_entry)
    shutil.rmtree(other.path)  # under imcache's nose: the folder's mtime moves
    assert [e.key for e in scan(Store(str(_root(made)))).entries] == [made.key]
    assert [row["key"] for row in ok_json("ls")] == [made.key]


def test_a_new_entry_is_listed_after_the_snapshot(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    _settle(made)
    scan(Store(str(_root(made))))
    other = make_entry("other.nii")
    found = scan(Store(str(_root(made))))
    assert {e.key for e in found.entries} == {made.key, other.key}
    assert _seen(found) == _seen(_fresh(made))


def test_uses_appended_since_are_read_on_top_of_it(
    make_entry: EntryMaker,
) -> None:
    made, other = _two_kept(make_entry)
    use_days_ago(made, 40)  # as a hit notes a use: a line appended to the index
    use_days_ago(other, 3)
    found = _scan_unlisted(made)
    assert _seen(found) == _seen(_fresh(made))
    used = {e.key: e.last_used_ns for e in found.entries}
    assert used[made.key] < time.time_ns() - 39 * 86400 * 10**9 < used[other.key]


def test_an_index_rewritten_by_a_clear_is_read_whole(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    old = make_entry("other.nii")
    use_days_ago(old, 40)
    _settle(made)
    scan(Store(str(_root(made))))
    ok("clear", "--older-than", "30d")  # removes `old`, rewrites or appends to the index
    found = scan(Store(str(_root(made))))
    assert [e.key for e in found.entries] == [made.key]
    assert _seen(found) == _seen(_fresh(made))


def test_an_index_edited_in_place_is_read_whole(
    make_entry: EntryMaker,
) -> None:
    """Same file, same size or more, other bytes before where the snapshot read up to."""
    made = make_entry("merged.nii")
    _settle(made)
    scan(Store(str(_root(made))))
    index = Path(index_path(str(_root(made)), MRCAT))
    data = index.read_bytes()
    with open(index, "r+b") as file:  # the entry's line damaged where it was: no line of it
        file.write(b"0" * 8 + data[8:])
    assert os.stat(index).st_size == len(data)
    found = scan(Store(str(_root(made))))
    assert found.unindexed[MRCAT] == 1  # read from its mark: the line was not believed
    assert _seen(found) == _seen(_fresh(made))


def test_a_leftover_that_became_an_entry_is_listed(
    make_entry: EntryMaker,
) -> None:
    """A folder listed without a line (a run publishing: renamed, record and line to come)
    that has gained one: the folder is listed again and its entry read."""
    made = make_entry("merged.nii")
    other = make_entry("other.nii")
    index = Path(index_path(str(_root(made)), MRCAT))
    lines = index.read_bytes().splitlines(keepends=True)
    theirs = [line for line in lines if other.key.encode() in line]
    index.write_bytes(b"".join(line for line in lines if line not in theirs))
    _settle(made)
    first = scan(Store(str(_root(made))))
    assert first.unindexed[MRCAT] == 1  # read from its mark this time
    with open(index, "ab") as file:
        file.write(b"".join(theirs))  # its line comes now
    found = scan(Store(str(_root(made))))
    assert found.unindexed[MRCAT] == 0
    assert _seen(found) == _seen(_fresh(made))


@pytest.mark.parametrize("damage", ["byte", "group-writable", "shared-cache", "other-python"])
def test_a_snapshot_not_to_be_trusted_is_not_read(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """One that lies (an entry removed by hand, the folder's mtime put back by hand): read, it
    would list the entry; damaged, writable by others, in a shared cache or made by another
    Python, it is not read at all."""
    made, other = _two_kept(make_entry)
    folder = made.path.parent
    before = os.stat(folder)
    shutil.rmtree(other.path)
    os.utime(folder, ns=(before.st_atime_ns, before.st_mtime_ns))  # as it was: the lie
    assert other.key in {e.key for e in scan(Store(str(_root(made)))).entries}  # believed
    kept = _kept(made)
    if damage == "byte":
        data = bytearray(kept.read_bytes())
        data[-1] ^= 1
        kept.write_bytes(bytes(data))
    elif damage == "group-writable":
        kept.chmod(0o664)
    elif damage == "shared-cache":
        _root(made).chmod(0o2770)
    else:
        monkeypatch.setattr(snapshot, "MAGIC", snapshot.MAGIC.replace(b"cpython", b"pypy"))
    assert [e.key for e in scan(Store(str(_root(made)))).entries] == [made.key]


def test_ls_and_stats_say_the_same_with_a_snapshot(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    use_days_ago(make_entry("other.nii"), 2)
    _settle(made)
    before = ok_json("ls"), ok_json("stats"), ok("ls").stdout
    assert _kept(made).is_file()  # written by the first of them
    assert (ok_json("ls"), ok_json("stats"), ok("ls").stdout) == before


def test_a_clear_that_empties_an_interface_drops_its_snapshot(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    _settle(made)
    scan(Store(str(_root(made))))
    assert _kept(made).is_file()
    ok("clear", "--all")
    assert not _kept(made).exists()
    assert not Path(index_path(str(_root(made)), MRCAT)).exists()


def test_a_real_clear_keeps_no_snapshot_a_dry_run_does(make_entry: EntryMaker) -> None:
    """A real clear changes the folders it lists: a snapshot of them would be out of date at
    once (and writing it would cost the clear the time it saves the next scan)."""
    made = make_entry("merged.nii")
    _settle(made)
    ok("clear", "--older-than", "30d")
    assert not _kept(made).exists()
    ok("clear", "--older-than", "30d", "--dry-run")
    assert _kept(made).is_file()


def test_a_cache_moved_elsewhere_is_listed_where_it_is_now(make_entry: EntryMaker) -> None:
    """A root renamed leaves its folders' inodes and mtimes as they were: the snapshot's
    listing holds, but the paths of the rows it kept are the old ones, never to be used."""
    made, other = _two_kept(make_entry)
    root = _root(made)
    moved = root.with_name(root.name + "-moved")
    root.rename(moved)
    try:
        found = scan(Store(str(moved)))
        assert sorted(e.path for e in found.entries) == sorted(
            str(moved / MRCAT / m.key) for m in (made, other)
        )
        assert all(os.path.isdir(e.path) for e in found.entries)
    finally:
        moved.rename(root)


def test_an_index_rewritten_under_a_listing_that_holds_is_believed_not_the_rows(
    make_entry: EntryMaker,
) -> None:
    """The rows a snapshot kept hold uses as the index said them then: an index that is
    another file since (a clear's rewrite) is read whole, and the entries made from it."""
    made, _ = _two_kept(make_entry)
    index = Path(index_path(str(_root(made)), MRCAT))
    used = time.time_ns() - 40 * 86400 * 10**9
    rewritten = index.with_name("rewritten")
    rewritten.write_bytes(index.read_bytes() + use_line(made.key, used))
    rewritten.replace(index)  # a new file, as a clear's rewrite places one: not appended to
    found = _scan_unlisted(made)  # the folder is as it was: the listing holds
    assert {e.key: e.last_used_ns for e in found.entries}[made.key] == used
    assert _seen(found) == _seen(_fresh(made))
