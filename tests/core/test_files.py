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
