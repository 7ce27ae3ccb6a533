"""The key stream: fields that never collide, files by name and content (never by folder)."""

from __future__ import annotations

from pathlib import Path

from imcache.core.interfaces.model import FileArg, SubArg
from imcache.core.keystream import KeyStream, encode_value


def _key(*fields: tuple[str, object]) -> str:
    stream = KeyStream()
    for label, value in fields:
        stream.add_value(label, value)  # type: ignore[arg-type]
    return stream.digest()


def test_list_boundaries_never_collide() -> None:
    assert _key(("x", ["a b"])) != _key(("x", ["a", "b"]))
    assert _key(("x", ["ab", "c"])) != _key(("x", ["a", "bc"]))
    assert _key(("x", "a"), ("y", "b")) != _key(("xa", ""), ("y", "b"))


def test_types_never_collide() -> None:
    assert _key(("x", "1")) != _key(("x", 1))
    assert _key(("x", 1)) != _key(("x", 1.0))
    assert _key(("x", True)) != _key(("x", 1))
    assert _key(("x", "true")) != _key(("x", True))


def test_sub_command_values_count_variant_and_values() -> None:
    one = SubArg("a", {"k": 1})
    assert _key(("x", one)) != _key(("x", SubArg("b", {"k": 1})))
    assert _key(("x", one)) != _key(("x", SubArg("a", {"k": 2})))
    assert _key(("x", one)) == _key(("x", SubArg("a", {"k": 1})))


def test_file_counts_by_basename_and_content_not_folder(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = tmp_path / "one" / "a.nii"
    second = tmp_path / "two" / "a.nii"
    renamed = tmp_path / "two" / "b.nii"
    for path in (first, second, renamed):
        path.write_bytes(b"same bytes")
    as_arg = lambda p: FileArg(str(p), str(p))  # noqa: E731
    assert encode_value(as_arg(first)) == encode_value(as_arg(second))
    assert encode_value(as_arg(first)) != encode_value(as_arg(renamed))
    second.write_bytes(b"other bytes")
    assert encode_value(as_arg(first)) != encode_value(as_arg(second))
