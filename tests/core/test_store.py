"""The cache root describes itself and is private; entries are prepared, set aside, marked used."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from imcache.core.errors import CacheError
from imcache.core.layout import cache_root
from imcache.core.store import Store


def test_new_root_describes_itself_and_is_private(tmp_path: Path) -> None:
    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    root = Path(store.root)
    assert root.name == "imcache_mem"
    assert (
        (root / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    assert "imcache" in (root / "README.txt").read_text()
    assert json.loads((root / "imcache-layout.json").read_text())["layout"] == 1
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    store.ensure("pkg.Tool")  # a second time is harmless


def test_root_of_another_layout_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "imcache_mem"
    root.mkdir()
    (root / "imcache-layout.json").write_text('{"layout": 999}')
    with pytest.raises(CacheError, match="unknown layout"):
        Store(str(root)).ensure("pkg.Tool")


def test_root_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "imcache_mem").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CacheError, match="symbolic link"):
        Store(str(tmp_path / "imcache_mem")).ensure("pkg.Tool")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_prepare_entry_clears_failed_and_incomplete_attempts(tmp_path: Path) -> None:
    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    key = "f" * 32
    entry = store.prepare_entry("pkg.Tool", key)
    (Path(entry) / "half-written.nii").write_bytes(b"x")
    failed = store.keep_failed(entry)
    assert ".failed-" in os.path.basename(failed) and os.path.isdir(failed)
    again = store.prepare_entry("pkg.Tool", key)
    assert os.listdir(again) == []
    assert not os.path.exists(failed)


def test_touch_used_mark_moves_the_mark_forward(tmp_path: Path) -> None:
    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    entry = store.prepare_entry("pkg.Tool", "a" * 32)
    store.publish(entry, {"layout": 1, "key": "a" * 32})
    mark = Path(entry) / ".imcache-used"
    os.utime(mark, ns=(0, 0))
    store.touch_used_mark(entry)
    assert mark.stat().st_mtime > 1_000_000_000


@pytest.mark.parametrize("other_finishes", [True, False])
def test_a_leftover_being_removed_by_a_clear_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, other_finishes: bool
) -> None:
    """A `clear` may be deleting `<key>.deleting-*` while a run sweeps it (seen in a race test)."""
    import shutil

    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    key = "c" * 32
    leftover = Path(store.entry_dir("pkg.Tool", key) + ".deleting-4242")
    leftover.mkdir()
    for n in range(5):
        (leftover / f"f{n}").write_bytes(b"x")
    real_rmtree = shutil.rmtree
    calls: list[str] = []

    def clear_got_there_first(path: str) -> None:
        calls.append(path)
        if len(calls) == 1:  # the other process deletes under our walk
            (leftover / "f0").unlink()
            if other_finishes:
                real_rmtree(leftover)
            raise FileNotFoundError(2, "No such file or directory", str(leftover / "f0"))
        real_rmtree(path)

    monkeypatch.setattr(shutil, "rmtree", clear_got_there_first)
    entry = store.prepare_entry("pkg.Tool", key)
    assert Path(entry).is_dir() and not leftover.exists()
    assert len(calls) == (1 if other_finishes else 2)


def test_a_failed_attempt_keeps_its_logs_and_small_files_not_large_outputs(
    tmp_path: Path,
) -> None:
    """Issue 13 item 8: a failure must not keep a full disk full of its partial outputs."""
    from imcache.core.store import FAILED_KEEP_BYTES

    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    entry = Path(store.prepare_entry("pkg.Tool", "f" * 32))
    (entry / "stderr.txt").write_bytes(b"e" * (FAILED_KEEP_BYTES + 1))  # a log: always kept
    (entry / "partial.nii").write_bytes(b"\0" * (FAILED_KEEP_BYTES + 1))
    (entry / "small.txt").write_bytes(b"s" * FAILED_KEEP_BYTES)
    kept = Path(store.keep_failed(str(entry)))
    assert sorted(p.name for p in kept.iterdir()) == [
        "imcache-dropped.txt",
        "small.txt",
        "stderr.txt",
    ]
    assert f"partial.nii: {FAILED_KEEP_BYTES + 1} bytes, removed" in (
        (kept / "imcache-dropped.txt").read_text()
    )


def test_sharing_a_root_lets_the_group_write_its_lock_files(tmp_path: Path) -> None:
    """Issue 16: an exclusive POSIX lock needs its file open for writing, by any of the group."""
    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    lock = Path(store.lock_path("pkg.Tool", "a" * 32))
    lock.touch()
    os.chmod(lock, 0o644)
    store.share(None)
    assert lock.stat().st_mode & 0o777 == 0o664
