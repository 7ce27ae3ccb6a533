"""The interface folders' index: a line per entry published, believed only for its own mark."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest

from imcache.core.index import index_path, line_of, read_index
from imcache.core.layout import USED_MARK
from imcache.core.scan import Entry, read_entry, scan
from imcache.core.store import Store
from tests.cache_entries import MRCAT, EntryMaker, Made, ok, ok_json, use_days_ago

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def _store(made: Made) -> Store:
    return Store(str(made.path.parent.parent))


def _index(made: Made) -> Path:
    return Path(index_path(str(made.path.parent.parent), MRCAT))


def _lines(made: Made) -> tuple[dict[str, tuple[int, int, bytes, int]], int]:
    read = read_index(str(_index(made)))
    return read.lines, read.total


def _scanned(made: Made) -> Entry:
    [entry] = [e for e in scan(_store(made)).entries if e.key == made.key]
    return entry


def _from_mark(made: Made) -> Entry:
    return read_entry(str(made.path), MRCAT, made.key)


def test_a_run_appends_one_line_that_a_scan_believes(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    lines, count = _lines(made)
    assert count == 1 and set(lines) == {made.key}
    created, size, summary, inode = lines[made.key]
    assert inode == os.stat(made.path / USED_MARK).st_ino
    assert _scanned(made) == _from_mark(made)  # every field as the mark itself says
    assert (created, size, summary) == (
        _from_mark(made).created_ns,
        _from_mark(made).bytes,
        _from_mark(made).summary,
    )
    ok(*made.args)  # a hit: the index is not written again
    assert _lines(made)[1] == 1


def test_a_line_for_another_mark_is_not_believed(make_entry: EntryMaker) -> None:
    """An entry copied in by hand over a key (or made again after its line was lost) has a mark
    of its own: the old line's size and time are not its."""
    made = make_entry("merged.nii")
    mark = made.path / USED_MARK
    text = mark.read_bytes()
    size, created, rest = text.split(b"\n", 2)
    later = b"%*d" % (len(created), int(created) + 5 * 10**9)
    bigger = b"%*d" % (len(size), int(size) + 1000)
    # A new file put in its place (as rsync, or a mark made again, would: a new inode while
    # the old one is still there), with other contents.
    copy = made.path / "copy"
    copy.write_bytes(b"\n".join((bigger, later, rest)))
    copy.replace(mark)
    entry = _scanned(made)
    assert entry.created_ns == int(later) and entry.bytes == int(bigger)
    assert entry == _from_mark(made)


@pytest.mark.parametrize("damage", ["check", "torn", "garbage"])
def test_a_damaged_line_is_ignored(make_entry: EntryMaker, damage: str) -> None:
    made = make_entry("merged.nii")
    index = _index(made)
    line = index.read_bytes()
    damaged = {
        "check": b"0" * 8 + line[8:],
        "torn": line[:40] + line[60:],  # two hosts' appends over each other
        "garbage": b"\x00\xff" * 20 + b"\n",
    }[damage]
    created, size, _, inode = _lines(made)[0][made.key]
    # What a damaged line would say if it were believed: another size.
    forged = line_of(made.key, inode, created, size + 7, b"{}")
    index.write_bytes(damaged + (forged[:20] if damage == "torn" else b""))
    assert _lines(made)[0] == {}
    assert _scanned(made) == _from_mark(made)


def test_the_latest_line_of_a_key_wins(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    ok(*made.args, "--force")  # the entry replaced: a second line, for the new mark
    lines, count = _lines(made)
    assert count == 2
    assert lines[made.key][3] == os.stat(made.path / USED_MARK).st_ino
    assert _scanned(made) == _from_mark(made)


def test_a_line_whose_entry_is_gone_lists_nothing(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    shutil.rmtree(made.path)  # by hand, under imcache's nose
    assert [e.key for e in scan(_store(made)).entries] == []
    assert ok_json("ls") == []


def test_an_entry_without_a_line_is_listed_and_a_clear_gives_it_one(
    make_entry: EntryMaker,
) -> None:
    """A cache made before the index: read from the marks; the next clear writes its lines."""
    made = make_entry("merged.nii")
    other = make_entry("other.nii")
    index = _index(made)
    index.unlink()
    found = scan(_store(made))
    assert {e.key for e in found.entries} == {made.key, other.key}
    assert found.unindexed[MRCAT] == 2
    ok("clear", "--older-than", "30d")  # removes nothing, heals the index
    lines, count = _lines(made)
    assert set(lines) == {made.key, other.key} and count == 2
    assert scan(_store(made)).unindexed[MRCAT] == 0
    assert _scanned(made) == _from_mark(made)
    ok("clear", "--older-than", "30d", "--dry-run")
    assert index.stat().st_mtime_ns == os.stat(index).st_mtime_ns  # a dry run writes nothing


def test_a_clear_drops_the_lines_of_entries_it_removed(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    old = make_entry("other.nii")
    use_days_ago(old, 40)
    index = _index(made)
    # Lines of entries long gone, as a busy cache accumulates them between clears.
    created, size, summary, inode = _lines(made)[0][made.key]
    with index.open("ab") as file:
        for number in range(100):
            file.write(line_of(f"{number:032x}", inode, created, size, summary))
    ok("clear", "--older-than", "30d")
    lines, count = _lines(made)
    assert set(lines) == {made.key} and count == 1
    ok("clear", "--all")
    assert not index.exists()  # nothing left: no index


def test_a_stray_folder_and_the_index_are_no_strays_of_each_other(
    make_entry: EntryMaker,
) -> None:
    made = make_entry("merged.nii")
    found = scan(_store(made))
    assert found.strays == [] and found.orphan_locks == []
    assert found.lock_inodes == {str(made.lock): os.stat(made.lock).st_ino}
    Path(f"{_index(made)}.tmp-4242").write_bytes(b"")  # a rewrite cut short
    assert scan(_store(made)).strays == []
    assert sorted(p.name for p in made.path.parent.iterdir()) == sorted(
        [made.key, made.lock.name]
    )  # the interface folder holds entries and locks only


def test_a_shared_cache_s_index_is_the_group_s(make_entry: EntryMaker, cache_root: Path) -> None:
    made = make_entry("merged.nii")
    index = _index(made)
    index.chmod(0o600)
    ok("init", "--shared")
    assert stat.S_IMODE(index.stat().st_mode) == 0o664
    index.unlink()
    ok(*made.args, "--force")  # a new index in a shared cache
    assert stat.S_IMODE(index.stat().st_mode) == 0o664


def test_a_scan_of_an_indexed_entry_opens_no_mark(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point of the index: a line that checks spares the open and read of the mark."""
    made = make_entry("merged.nii")
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, *args: object, **kwargs: object) -> int:
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    start = time.perf_counter()
    assert [e.key for e in scan(_store(made)).entries] == [made.key]
    assert time.perf_counter() - start < 5
    assert not [path for path in opened if path.endswith(USED_MARK)]


def test_a_rewrite_carries_on_what_was_published_since_the_scan(
    make_entry: EntryMaker,
) -> None:
    """A clear rewrites from its scan; a run that published meanwhile keeps its line."""
    from imcache.core.index import rewrite_index

    made = make_entry("merged.nii")
    seen = read_index(str(_index(made)))
    later = make_entry("later.nii")  # published after the scan read the index
    assert rewrite_index(str(_index(made)), [], seen, shared=False)
    assert set(_lines(made)[0]) == {later.key}
    # An index replaced since the scan (another clear rewrote it) is left as it is.
    seen = read_index(str(_index(made)))
    moved = _index(made).with_name("moved")
    _index(made).rename(moved)
    moved.rename(_index(made).with_name("x"))
    shutil.copy(_index(made).with_name("x"), _index(made))  # another file, same lines
    before = _index(made).read_bytes()
    assert not rewrite_index(str(_index(made)), [], seen, shared=False)
    assert _index(made).read_bytes() == before
