"""The digest memo (issue 5): digests kept by (device, inode, size, mtime_ns, ctime_ns) in the
cache root; trusted only when the file has not changed since, and never stored for a file changed
within the timestamp granularity of its hashing (git's "racily clean" rule)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import xxhash

from imcache.core import hashing, memo_upkeep
from imcache.core.hashing import DigestMemo, Reader, digest_path
from tests.conftest import require_tool, run_json


def _settled(path: Path, content: bytes) -> Path:
    """A file written, then left alone long enough (for the memo) to be past the racy window."""
    path.write_bytes(content)
    return path


@pytest.fixture
def no_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files made by a test are seconds old at most: let the memo take them at once."""
    monkeypatch.setattr(hashing, "RACY_NS", 0)


def _memo(tmp_path: Path) -> DigestMemo:
    return DigestMemo(str(tmp_path / "memo"))


def test_the_memo_never_creates_the_cache_root(tmp_path: Path, no_racy_window: None) -> None:
    """A first run's hashing comes before the root exists: the root must still be made private
    (0700, described) by the store, not by the memo with the umask's mode."""
    data = _settled(tmp_path / "a.nii", b"r" * 100)
    root = tmp_path / "base" / "imcache_mem"
    digest_path(str(data), Reader(DigestMemo(str(root / "digests"))))
    assert not root.exists()


def _refuse_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_read(path: str, size: int | None = None) -> str:
        raise AssertionError(f"{path} was read although the memo knew it")

    monkeypatch.setattr(hashing, "digest_file", no_read)


def test_an_unchanged_file_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_racy_window: None
) -> None:
    data = _settled(tmp_path / "a.nii", b"x" * 5000)
    first = digest_path(str(data), Reader(_memo(tmp_path)))
    assert first == xxhash.xxh3_128_hexdigest(b"x" * 5000)
    _refuse_reading(monkeypatch)
    assert digest_path(str(data), Reader(_memo(tmp_path))) == first


@pytest.mark.parametrize("change", ["other content, same size", "appended", "replaced"])
def test_a_changed_file_is_always_hashed_again(
    tmp_path: Path, no_racy_window: None, change: str
) -> None:
    data = _settled(tmp_path / "a.nii", b"a" * 4096)
    info = data.stat()
    digest_path(str(data), Reader(_memo(tmp_path)))
    if change == "other content, same size":
        data.write_bytes(b"b" * 4096)
        os.utime(data, ns=(info.st_atime_ns, info.st_mtime_ns))  # even with mtime put back
    elif change == "appended":
        with data.open("ab") as handle:
            handle.write(b"more")
    else:
        other = _settled(tmp_path / "b.nii", b"c" * 4096)
        other.replace(data)
    again = digest_path(str(data), Reader(_memo(tmp_path)))
    assert again == xxhash.xxh3_128_hexdigest(data.read_bytes())


def test_a_file_changed_just_before_hashing_is_not_memoised(tmp_path: Path) -> None:
    """The default rule: written a moment ago, so a write in the same clock tick as our reading
    could leave its signature as it is; hashed again next time rather than trusted."""
    data = tmp_path / "fresh.nii"
    data.write_bytes(b"new")
    memo = _memo(tmp_path)
    digest_path(str(data), Reader(memo))
    assert memo.get(data.stat()) is None


def test_an_old_file_is_memoised_with_the_default_rule(tmp_path: Path) -> None:
    data = tmp_path / "old.nii"
    data.write_bytes(b"old")
    time.sleep((hashing.RACY_NS / 1e9) + 0.1)  # ctime cannot be set back: wait it out
    memo = _memo(tmp_path)
    digest = digest_path(str(data), Reader(memo))
    assert memo.get(data.stat()) == digest


def test_concurrent_writers_never_tear_an_entry(tmp_path: Path, no_racy_window: None) -> None:
    """8 processes storing the same file's digest over and over: every read sees a whole one."""
    data = _settled(tmp_path / "a.nii", b"z" * 100)
    memo_dir = tmp_path / "memo"
    writer = (
        "import os, sys\n"
        "from imcache.core.hashing import DigestMemo\n"
        "memo = DigestMemo(sys.argv[1]); info = os.stat(sys.argv[2])\n"
        "for i in range(300): memo.put(info, f'{i:032x}', 1 << 62)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", writer, str(memo_dir), str(data)]) for _ in range(8)
    ]
    memo = DigestMemo(str(memo_dir))
    seen = set()
    while any(p.poll() is None for p in procs):
        found = memo.get(data.stat())
        if found is not None:
            assert len(found) == 32 and int(found, 16) < 300, found
            seen.add(found)
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert seen, "the memo was never readable"
    assert not [n for n in os.listdir(next(memo_dir.iterdir())) if ".tmp-" in n]


def test_a_read_only_memo_is_only_a_missed_shortcut(tmp_path: Path, no_racy_window: None) -> None:
    data = _settled(tmp_path / "a.nii", b"q" * 10)
    blocker = tmp_path / "memo"
    blocker.write_text("a file where the memo folder would be\n")
    assert digest_path(str(data), Reader(DigestMemo(str(blocker)))) == (
        xxhash.xxh3_128_hexdigest(b"q" * 10)
    )


def test_read_ahead_hashes_files_on_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hashing, "READ_AHEAD_BYTES", 0)
    files = [_settled(tmp_path / f"f{i}.bin", bytes([i]) * 70_000) for i in range(4)]
    reader = Reader()
    reader.read_ahead([str(f) for f in files])
    assert reader.digests == {str(f): xxhash.xxh3_128_hexdigest(f.read_bytes()) for f in files}
    assert set(reader.seen) == {str(f) for f in files}


def test_a_run_rekeys_when_an_input_changes_behind_the_memo(
    make_nifti: object, no_racy_window: None, isolated: Path, cache_root: Path
) -> None:
    """End to end with the real mrcat: first run fills the memo; an input rewritten with the
    same size (mtime put back) must give another key, not the memo's stale digest."""
    require_tool("mrcat")
    a = make_nifti("a.nii", seed=1)  # type: ignore[operator]
    b = make_nifti("b.nii", seed=2)  # type: ignore[operator]
    first = run_json("run", "mrtrix3.MRCat", "--in-files", "a.nii", "b.nii")
    # The first run hashed before the root existed (the memo never creates it); a hit fills it.
    assert run_json("run", "mrtrix3.MRCat", "--in-files", "a.nii", "b.nii")["cached"]
    assert list((cache_root / "digests").rglob("*-*")), "the memo was not filled"
    info = a.stat()
    replacement = make_nifti("c.nii", seed=3)  # type: ignore[operator]
    a.write_bytes(replacement.read_bytes())
    os.utime(a, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert a.stat().st_size == info.st_size
    second = run_json("run", "mrtrix3.MRCat", "--in-files", "a.nii", "b.nii")
    assert second["key"] != first["key"] and second["cached"] is False
    third = run_json("run", "mrtrix3.MRCat", "--in-files", "a.nii", "b.nii")
    assert third["key"] == second["key"] and third["cached"] is True
    assert b.exists()


def test_progress_is_told_every_byte_hashed(tmp_path: Path) -> None:
    sizes = [3 * hashing.PROGRESS_SLICE // 2, 5000]
    files = [tmp_path / f"p{i}.bin" for i in range(len(sizes))]
    for path, size in zip(files, sizes, strict=True):
        path.write_bytes(os.urandom(1024) * (size // 1024) + b"x" * (size % 1024))
    told: list[int] = []
    reader = Reader(progress=told.append)
    digests = [digest_path(str(path), reader) for path in files]
    assert sum(told) == sum(sizes) and len(told) >= 3  # the big file in slices
    assert digests == [xxhash.xxh3_128_hexdigest(p.read_bytes()) for p in files]


def test_the_bar_shows_only_after_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from imcache.cli import progress

    stream = io.StringIO()
    bar = progress.HashProgress(stream, force=True)
    bar(1000)
    assert bar.bar is None and stream.getvalue() == ""  # a quick hash shows nothing
    monkeypatch.setattr(progress, "SHOW_AFTER_S", 0.0)
    bar(2_000_000)
    assert bar.bar is not None
    bar.close()
    assert "hashing inputs" in stream.getvalue()
    from imcache.cli.common import on_terminal  # what run's bar and spinner ask first

    assert not on_terminal(io.StringIO())  # not a terminal: no bar at all


@pytest.mark.usefixtures("drop_own_holds")
def test_clear_prunes_memo_files_no_entry_needs(
    make_entry: Any, cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`clear` keeps the memo bounded: a memo file goes once no entry still in the cache names
    its digest (and it was written over MEMO_KEEP_NS ago), and so does one that is not ours.
    Its dry run counts them and removes none; stats shows the memo's size."""
    from tests.cache_entries import ok, ok_json

    kept = make_entry("x.nii")
    [digest] = {d for d in re.findall(r"xxh3:([0-9a-f]{32})", json.dumps(ok_json("ls")))}
    old = time.time_ns() - memo_upkeep.MEMO_KEEP_NS - 86400 * 10**9
    memo = cache_root / "digests"
    files = {
        "named": f"10 {old} {old} {digest}\n",  # an input of the entry kept: its hits read it
        "unnamed": f"10 {old} {old} {'0' * 32}\n",  # no entry's input any more
        "recent": f"10 {old} {old} {'1' * 32}\n",  # written lately: kept a while whatever it is
        "junk": "not a memo line\n",
    }
    for number, (name, text) in enumerate(files.items()):
        path = memo / f"{number:02x}" / f"fd00-{name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name != "recent":
            os.utime(path, ns=(old, old))
    assert ok_json("stats")["memo_files"] == 4

    dry = ok("clear", "--older-than", "100d", "--dry-run")
    assert "would prune 2 digest memo files no entry needs" in dry.stderr
    assert len(list(memo.glob("*/*"))) == 4
    report = ok_json("clear", "--older-than", "100d")
    assert report["memo"]["pruned"] == 2
    assert sorted(p.name for p in memo.glob("*/*")) == ["fd00-named", "fd00-recent"]
    stats = ok_json("stats")
    assert (stats["memo_files"], stats["memo_bytes"]) == (
        2,
        sum(p.stat().st_size for p in memo.glob("*/*")),
    )
    assert (kept.path / kept.out).exists()

    ok("clear", "--all")  # its entry gone, the named one goes too (once old)
    assert [p.name for p in memo.glob("*/*")] == ["fd00-recent"]
