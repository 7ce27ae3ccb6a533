"""The key stream is unambiguous, and file and folder digests follow content, not location."""

from __future__ import annotations

import os
from pathlib import Path

import xxhash

from imcache.core.hashing import (
    Reader,
    changed_since,
    digest_file,
    digest_path,
    digest_tree,
)


def test_file_digest_is_xxh3_128_of_content_small_and_large(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"x" * 1000)
    large = tmp_path / "large"
    large.write_bytes(os.urandom(3 << 20))  # above the mmap threshold
    for path in (small, large):
        assert digest_file(str(path)) == xxhash.xxh3_128_hexdigest(path.read_bytes())
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert digest_file(str(empty)) == xxhash.xxh3_128_hexdigest(b"")


def test_tree_digest_follows_names_content_and_structure(tmp_path: Path) -> None:
    def tree(root: Path, files: dict[str, bytes]) -> str:
        for name, data in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
        return digest_tree(str(root))

    base = tree(tmp_path / "a", {"x/1.dcm": b"1", "x/2.dcm": b"2"})
    assert tree(tmp_path / "b", {"x/1.dcm": b"1", "x/2.dcm": b"2"}) == base
    assert tree(tmp_path / "c", {"x/1.dcm": b"1", "x/2.dcm": b"3"}) != base
    assert tree(tmp_path / "d", {"x/1.dcm": b"1", "y/2.dcm": b"2"}) != base
    assert tree(tmp_path / "e", {"x/1.dcm": b"1", "x/2.dcm": b"2", "x/3.dcm": b""}) != base
    assert digest_path(str(tmp_path / "a")) == base


def test_tree_digest_reads_through_links_and_survives_loops(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    target = tmp_path / "outside.dat"
    target.write_bytes(b"v1")
    (root / "link.dat").symlink_to(target)
    (root / "loop").symlink_to(root)
    before = digest_tree(str(root))
    target.write_bytes(b"v2")  # the tool reads through the link: the digest must change
    assert digest_tree(str(root)) != before


def test_a_cache_root_inside_a_folder_is_no_part_of_its_content(tmp_path: Path) -> None:
    """The default base is the current folder: `--source-dir .` holds imcache_mem, whose
    entries and digest memo change with every run. Neither it nor any imcache_mem below counts,
    and making it after the folder was hashed is not a change of the input."""
    root = tmp_path / "dicoms"
    (root / "sub").mkdir(parents=True)
    (root / "0.dcm").write_bytes(b"slice")
    plain = digest_tree(str(root))
    reader = Reader()
    assert digest_path(str(root), reader) == plain
    (root / "imcache_mem" / "digests").mkdir(parents=True)
    (root / "imcache_mem" / "digests" / "x").write_text("memo")
    (root / "sub" / "imcache_mem").mkdir()
    assert digest_tree(str(root)) == plain
    assert changed_since(reader.seen) == [], "making the cache root is no change of the input"
    (root / "1.dcm").write_bytes(b"another slice")
    assert changed_since(reader.seen) == [str(root)], "a name added to the folder still counts"
