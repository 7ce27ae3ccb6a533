"""The interface folders' index: a line per entry published, believed only for its own mark."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from imcache.core.index import entry_line, index_path, read_index
from imcache.core.layout import USED_MARK
from imcache.core.scan import Entry, format_time, read_entry, scan
from imcache.core.store import Store
from tests.cache_entries import MRCAT, EntryMaker, Made, ok, ok_json, use_days_ago

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def _store(made: Made) -> Store:
    return Store(str(made.path.parent.parent))


def _index(made: Made) -> Path:
    return Path(index_path(str(made.path.parent.parent), MRCAT))


def _where(made: Made) -> tuple[str, str]:
    """The root and interface whose index `made`'s line is in."""
    return str(made.path.parent.parent), MRCAT


def _lines(made: Made) -> tuple[dict[str, tuple[int, int, bytes, int]], int]:
    read = read_index(*_where(made))
    return read.lines, read.total


def _scanned(made: Made) -> Entry:
    [entry] = [e for e in scan(_store(made)).entries if e.key == made.key]
    return entry


def _from_mark(made: Made) -> Entry:
    return read_entry(str(made.path), MRCAT, made.key)


def test_a_run_appends_its_entry_s_line_and_a_scan_believes_it(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    lines, _ = _lines(made)
    assert set(lines) == {made.key}
    created, size, summary, inode = lines[made.key]
    assert inode == os.stat(made.path / USED_MARK).st_ino
    assert _scanned(made) == _from_mark(made)  # every field as the mark itself says
    assert (created, size, summary) == (
        _from_mark(made).created_ns,
        _from_mark(made).bytes,
        _from_mark(made).summary,
    )


def test_each_hit_notes_its_use_as_the_mark_keeps_it(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    before = _lines(made)[1]
    ok(*made.args)  # a hit: one use line, the moment the mark says
    assert _lines(made)[1] == before + 1
    assert read_index(*_where(made)).uses[made.key] == _from_mark(made).last_used_ns
    assert _scanned(made) == _from_mark(made)
    use_days_ago(made, 40)  # a use moved back, as tests and `Store.touch_used_mark` may
    assert _scanned(made).last_used_ns == _from_mark(made).last_used_ns
    [row] = ok_json("ls")
    assert row["last_used"] == format_time(_from_mark(made).last_used_ns)


def test_what_a_clear_removes_is_judged_by_the_mark_itself(make_entry: EntryMaker) -> None:
    """A use the index never heard of (an older imcache, a mark touched by hand, another
    mark put in place): the index says 40 days, the mark says now; no clear removes it."""
    made = make_entry("merged.nii")
    use_days_ago(made, 40)
    mark = made.path / USED_MARK
    copy = made.path / "copy"  # another mark put in place (a new inode), used just now
    copy.write_bytes(mark.read_bytes())
    copy.replace(mark)
    assert _scanned(made).last_used_ns < time.time_ns() - 30 * 86400 * 10**9  # the index's view
    assert ok_json("clear", "--older-than", "30d", "--dry-run")["removed"] == []
    assert ok_json("clear", "--older-than", "30d")["removed"] == []
    assert made.path.is_dir()
    use_days_ago(made, 40)  # on the mark itself (same inode) and in the index alike
    os.utime(mark)  # then touched by hand: the mark says now
    assert ok_json("clear", "--older-than", "30d", "--dry-run")["removed"] == []
    assert ok_json("clear", "--older-than", "30d")["removed"] == []
    use_days_ago(made, 40)
    assert [row["key"] for row in ok_json("clear", "--older-than", "30d")["removed"]] == [made.key]


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
    forged = entry_line(made.key, inode, created, size + 7, b"{}")
    index.write_bytes(damaged + (forged[:20] if damage == "torn" else b""))
    assert _lines(made)[0] == {}
    assert _scanned(made) == _from_mark(made)


def test_the_latest_line_of_a_key_wins(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    use_days_ago(made, 40)
    ok(*made.args, "--force")  # the entry replaced: a line for the new mark; older uses void
    lines, _ = _lines(made)
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
    assert set(lines) == {made.key, other.key} and count <= 4  # an entry's line and a use's
    assert scan(_store(made)).unindexed[MRCAT] == 0
    assert _scanned(made) == _from_mark(made)
    before = index.read_bytes(), index.stat().st_mtime_ns
    index.unlink()  # a dry run heals nothing either: the index stays gone
    ok("clear", "--older-than", "30d", "--dry-run")
    assert not index.exists()
    index.write_bytes(before[0])
    os.utime(index, ns=(before[1], before[1]))
    ok("clear", "--older-than", "30d", "--dry-run")
    assert (index.read_bytes(), index.stat().st_mtime_ns) == before  # nor rewrites it


def test_a_clear_drops_the_lines_of_entries_it_removed(make_entry: EntryMaker) -> None:
    made = make_entry("merged.nii")
    old = make_entry("other.nii")
    use_days_ago(old, 40)
    index = _index(made)
    # Lines of entries long gone, as a busy cache accumulates them between clears.
    created, size, summary, inode = _lines(made)[0][made.key]
    with index.open("ab") as file:
        for number in range(100):
            file.write(entry_line(f"{number:032x}", inode, created, size, summary))
    ok("clear", "--older-than", "30d")
    lines, count = _lines(made)
    assert set(lines) == {made.key} and count <= 2
    ok("clear", "--all")
    assert not index.exists()  # nothing left: no index


def test_a_stray_folder_and_the_index_are_no_strays_of_each_other(
    make_entry: EntryMaker,
) -> None:
    made = make_entry("merged.nii")
    found = scan(_store(made))
    assert found.strays == [] and found.orphan_locks == []
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


def test_a_scan_of_an_indexed_entry_opens_nothing_of_it(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The point of the index: a line that checks spares every system call on the entry."""
    made = make_entry("merged.nii")
    opened: list[str] = []

    def spied(call: Any) -> Any:
        def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
            opened.append(os.fspath(path))
            return call(path, *args, **kwargs)

        return spy

    for name in ("open", "stat", "lstat", "scandir"):
        monkeypatch.setattr(os, name, spied(getattr(os, name)))
    assert [e.key for e in scan(_store(made)).entries] == [made.key]
    assert not [path for path in opened if str(made.path) in path]


def test_a_rewrite_carries_on_what_was_published_since_the_scan(
    make_entry: EntryMaker,
) -> None:
    """A clear rewrites from its scan; a run that published meanwhile keeps its line."""
    from imcache.core.index import rewrite_index

    made = make_entry("merged.nii")
    seen = read_index(*_where(made))
    later = make_entry("later.nii")  # published after the scan read the index
    assert rewrite_index(*_where(made), [], seen, shared=False)
    assert set(_lines(made)[0]) == {later.key}
    # An index replaced since the scan (another clear rewrote it) is left as it is.
    seen = read_index(*_where(made))
    moved = _index(made).with_name("moved")
    _index(made).rename(moved)
    moved.rename(_index(made).with_name("x"))
    shutil.copy(_index(made).with_name("x"), _index(made))  # another file, same lines
    before = _index(made).read_bytes()
    assert not rewrite_index(*_where(made), [], seen, shared=False)
    assert _index(made).read_bytes() == before
