"""Atomic placement and removal: a reader sees a whole file or the old one, never a temporary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imcache.core.files import place_atomic, write_atomic


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
    from imcache.core.files import Deleter

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
