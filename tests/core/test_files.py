"""Atomic placement and removal: a reader sees a whole file or the old one, never a temporary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imcache.core.files import BACKGROUND_OVER, Deleter, place_atomic, write_atomic
from tests.cache_entries import set_aside_trees, spawn_log, starts, wait_for_deleters


def test_write_atomic_leaves_no_temporary(tmp_path: Path) -> None:
    folder = tmp_path / "atomic"
    folder.mkdir()
    target = folder / "file.json"
    write_atomic(str(target), b"{}", durable=True)
    assert target.read_bytes() == b"{}"
    assert os.listdir(folder) == ["file.json"]


def test_a_failed_placement_leaves_the_target_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "atomic"
    folder.mkdir()
    target = folder / "file.json"
    target.write_bytes(b"old")

    def fail(temporary: str) -> None:
        Path(temporary).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        place_atomic(str(target), fail)
    assert target.read_bytes() == b"old"
    assert os.listdir(folder) == ["file.json"]


def test_the_deleter_removes_every_tree_it_was_given(tmp_path: Path) -> None:
    trees, parent = [], tmp_path / "trees"
    for number in range(100):  # over the threshold: two threads share them
        tree = parent / f"t{number}"
        (tree / "sub").mkdir(parents=True)
        (tree / "a").write_text("a")
        (tree / "sub" / "b").write_text("b")
        (tree / "link").symlink_to(tmp_path)  # removed, never followed
        trees.append(tree)
    with Deleter() as deleter:
        for tree in trees:
            deleter.add(str(tree))
    assert list(parent.iterdir()) == []
    assert tmp_path.is_dir()  # what the links pointed at is untouched


def test_only_more_than_the_threshold_of_trees_go_to_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to BACKGROUND_OVER trees are deleted before the block ends, with no process started,
    as every small clear always was; one more and a detached deleter takes them all."""
    log = spawn_log(tmp_path, monkeypatch)
    for number, root in ((BACKGROUND_OVER, tmp_path / "small"), (BACKGROUND_OVER + 1, tmp_path)):
        trees = set_aside_trees(root / "imcache_mem", number)
        with Deleter(background_root=str(root / "imcache_mem")) as deleter:
            for tree in trees:
                deleter.add(str(tree))
        if number == BACKGROUND_OVER:
            assert deleter.in_background == 0
            assert not any(tree.exists() for tree in trees)
            assert starts(log) == []
        else:
            assert deleter.in_background == number
            assert starts(log) == [f"-m imcache.core.purge {root / 'imcache_mem'}"]
            wait_for_deleters(root / "imcache_mem")
            assert not any(tree.exists() for tree in trees)


def test_a_deleter_without_a_background_root_never_starts_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = spawn_log(tmp_path, monkeypatch)
    trees = set_aside_trees(tmp_path / "imcache_mem", BACKGROUND_OVER * 2)
    with Deleter() as deleter:
        for tree in trees:
            deleter.add(str(tree))
    assert (deleter.in_background, starts(log)) == (0, [])
    assert not any(tree.exists() for tree in trees)
