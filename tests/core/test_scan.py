"""Reading the cache: entries found by a key prefix, and a root that is not a folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.cache_entries import EntryMaker, ok_json
from tests.conftest import imcache

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def test_show_bad_prefixes(make_entry: EntryMaker) -> None:
    entry = make_entry("merged.nii")
    unknown = next(p for p in (f"{i:04x}" for i in range(65536)) if not entry.key.startswith(p))
    result = imcache("show", unknown)
    assert result.exit_code == 1
    assert f"no entry has a key starting with {unknown}" in result.stderr
    assert "imcache ls" in result.stderr

    for bad in ("zz12", "abc", "x" * 40):
        result = imcache("show", bad)
        assert result.exit_code == 2, bad
        assert "not a key prefix" in result.stderr
        assert "4 to 32 hex digits" in result.stderr

    # A second entry whose key shares the first 6 digits makes that prefix ambiguous.
    tail = "0" * 26 if not entry.key.endswith("0" * 26) else "1" * 26
    twin = entry.path.with_name(entry.key[:6] + tail)
    shutil.copytree(entry.path, twin)
    result = imcache("show", entry.key[:6])
    assert result.exit_code == 2, result.stderr
    assert f"2 entries have keys starting with {entry.key[:6]}" in result.stderr
    assert "give more digits" in result.stderr
    assert ok_json("show", entry.key[:7])["key"] == entry.key


ROOT_COMMANDS = [["ls"], ["clear", "--all"], ["stats"], ["verify"], ["show", "abcd"]]


@pytest.mark.parametrize("words", [*ROOT_COMMANDS, ["session", "status"]], ids=" ".join)
def test_a_root_that_is_a_regular_file_is_named_in_one_line(
    cache_root: Path, words: list[str]
) -> None:
    cache_root.parent.mkdir(parents=True)
    cache_root.write_text("mine, not a cache")
    result = imcache(*words)
    assert result.exit_code == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"imcache: error: cache root {cache_root} is a regular file, not a folder; "
        "move it aside, or point the cache at another base folder"
    ]
    assert cache_root.read_text() == "mine, not a cache"


@pytest.mark.parametrize("words", ROOT_COMMANDS, ids=" ".join)
def test_a_root_that_is_a_fifo_says_so(cache_root: Path, words: list[str]) -> None:
    cache_root.parent.mkdir(parents=True)
    os.mkfifo(cache_root)
    result = imcache(*words)
    assert result.exit_code == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert f"cache root {cache_root} is a fifo, not a folder" in line


def test_format_time_is_what_datetime_gives() -> None:
    import datetime as dt
    import random

    from imcache.core.scan import format_time

    rng = random.Random(17)
    moments = [rng.randrange(0, 4 * 10**18) for _ in range(2000)]
    moments += [10**18 + fraction for fraction in (0, 999_999_499, 999_999_500, 999_999_999)]
    for ns in moments:
        expected = dt.datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="seconds")
        assert format_time(ns) == expected, ns


@pytest.mark.parametrize(
    "zone", ["Australia/Lord_Howe", "America/St_Johns", "Europe/Berlin", "Asia/Kathmandu"]
)
def test_format_time_holds_across_a_change_of_offset(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each hour's offset is worked out once: an hour in which it changes (Lord Howe's half-hour
    shift falls within a UTC hour) is formatted second by second, and another zone starts over."""
    import datetime as dt
    import time

    from imcache.core.scan import format_time

    assert format_time(1_790_000_000 * 10**9)  # an hour of the zone in force before
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        start = 1_775_000_000  # 2026-03-31: days of changes are within the year that follows
        for ns in range(start * 10**9, (start + 366 * 86400) * 10**9, 599 * 10**9 + 1):
            expected = dt.datetime.fromtimestamp(ns / 1e9).astimezone().isoformat("T", "seconds")
            assert format_time(ns) == expected, (zone, ns)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_mark_holds_the_inputs_and_an_old_mark_still_serves(tmp_path: Path) -> None:
    from imcache.core.entry import mark_text
    from imcache.core.inputs import inputs_of
    from imcache.core.layout import RECORD, USED_MARK
    from imcache.core.scan import read_entry

    record = {"key_fields": ["interface = x", "input.in_file = file 'a' xxh3:00", "tool = t"]}
    entry_dir = tmp_path / "k"
    entry_dir.mkdir()
    (entry_dir / RECORD).write_text(json.dumps(record))
    (entry_dir / USED_MARK).write_bytes(mark_text(100, record))
    entry = read_entry(str(entry_dir), "x", "k")
    assert entry.bytes == 100 + len(mark_text(100, record))
    assert entry.summary is not None
    assert inputs_of(entry) == {"in_file": "file 'a' xxh3:00"}
    (entry_dir / USED_MARK).write_bytes(b"%20d\n" % 100)  # a mark made before issue 17
    old = read_entry(str(entry_dir), "x", "k")
    assert (old.bytes, old.summary) == (100, None)
    assert inputs_of(old) == {"in_file": "file 'a' xxh3:00"}  # from the record, parsed


def test_marks_parsed_together_are_each_entry_own_or_none(tmp_path: Path) -> None:
    """Two damaged marks whose lines make valid JSON only once joined by "," (the first ends
    inside a string the second closes) are not read as one entry's inputs and a forged
    other's: each mark is then read alone, as `inputs_of` does (here: from the records)."""
    from imcache.core.entry import mark_text
    from imcache.core.inputs import inputs_json_all, inputs_of_all
    from imcache.core.layout import RECORD, USED_MARK
    from imcache.core.scan import read_entry

    entries = []
    tails = [b'{"in_file": "x\n', b'{"}, {"in_file": "forged"}\n']
    for index, tail in enumerate(tails):
        record = {"key_fields": [f"input.in_file = file 'f{index}' xxh3:00"]}
        entry_dir = tmp_path / f"k{index}"
        entry_dir.mkdir()
        (entry_dir / RECORD).write_text(json.dumps(record))
        size, created, _ = mark_text(100, record).split(b"\n", 2)
        (entry_dir / USED_MARK).write_bytes(size + b"\n" + created + b"\n" + tail)
        entries.append(read_entry(str(entry_dir), "x", f"k{index}"))
    expected = [{"in_file": "file 'f0' xxh3:00"}, {"in_file": "file 'f1' xxh3:00"}]
    assert inputs_of_all(entries) == expected
    assert [json.loads(text) for text in inputs_json_all(entries)] == expected


def test_a_lock_named_after_a_folder_that_is_no_key_is_a_stray(tmp_path: Path) -> None:
    """`notes.lock` beside a stray folder `notes` is reported as a stray too (as before the
    scan looked locks up among the folders listed): only a key folder's lock is imcache's."""
    from imcache.core.scan import scan
    from imcache.core.store import Store

    root = tmp_path / "imcache_mem"
    (root / "test.Good" / "notes").mkdir(parents=True)
    (root / "test.Good" / "notes.lock").touch()
    found = scan(Store(str(root)))
    assert sorted(os.path.basename(path) for path in found.strays) == ["notes", "notes.lock"]


def test_a_mark_that_is_not_ascii_is_listed_as_json_dumps_shows_it(tmp_path: Path) -> None:
    """A mark's line is spliced into `ls --json` as it is only if it can be json.dumps's text
    (ASCII): an edited mark holding UTF-8 is not shown as replacement characters."""
    from imcache.core.entry import mark_text
    from imcache.core.inputs import inputs_json_all
    from imcache.core.layout import RECORD, USED_MARK
    from imcache.core.scan import read_entry

    record = {"key_fields": ["input.word = 'a'"]}
    entry_dir = tmp_path / "k"
    entry_dir.mkdir()
    (entry_dir / RECORD).write_text(json.dumps(record))
    size, created, _ = mark_text(100, record).split(b"\n", 2)
    line = '{"word": "é"}\n'.encode()
    (entry_dir / USED_MARK).write_bytes(size + b"\n" + created + b"\n" + line)
    assert inputs_json_all([read_entry(str(entry_dir), "x", "k")]) == [json.dumps({"word": "é"})]
