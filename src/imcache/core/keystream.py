"""The key: a canonical, tagged, length-prefixed byte stream hashed with xxh3-128.

Each field is `tag, label, payload`, every part prefixed by its length, so that no two different
sets of inputs can produce the same stream (`["a b"]` and `["a", "b"]` differ). The same fields
are kept as text lines, which `imcache explain` shows and the record stores to diff a miss.
Files count by name and content (core/hashing.py reads them).
"""

from __future__ import annotations

import os

import xxhash

from imcache.core.datatype import datatype, field
from imcache.core.hashing import Reader, digest_path, utf8
from imcache.core.interfaces.model import FileArg, SubArg, Value

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KEY_FORMAT = 1


@datatype(frozen=False)
class KeyStream:
    """Accumulates fields; `digest()` is the key, `lines` the same fields for people."""

    hasher: xxhash.xxh3_128 = field(default_factory=xxhash.xxh3_128)
    lines: list[str] = field(default_factory=list)
    items: dict[str, Any] = field(default_factory=dict)  # the same fields as JSON, to diff
    reader: Reader = field(default_factory=lambda: Reader())  # how input files are read

    def add(self, label: str, tag: bytes, payload: bytes, shown: str) -> None:
        for part in (tag, label.encode("utf-8", "surrogateescape"), payload):
            self.hasher.update(len(part).to_bytes(8, "little"))  # struct.pack("<Q"), unimported
            self.hasher.update(part)
        self.lines.append(f"{label} = {shown}")

    def add_text(self, label: str, text: str) -> None:
        self.add(label, b"s", utf8(text), repr(text))
        self.items[label] = text

    def add_value(self, label: str, value: Value) -> None:
        payload, shown = encode_value(value, self.reader)
        self.add(label, b"v", payload, shown)
        self.items[label] = self.reader.describe(value)

    def digest(self) -> str:
        return self.hasher.hexdigest()


def encode_value(
    value: Value | dict[str, Value], reader: Reader | None = None
) -> tuple[bytes, str]:
    """A typed value as unambiguous bytes, and as text. Files count by name and content.

    The signature of every file read is kept by `reader`, to tell later whether it changed."""
    reader = Reader() if reader is None else reader
    if isinstance(value, bool):
        return b"b" + (b"1" if value else b"0"), "true" if value else "false"
    if isinstance(value, int):
        return b"i" + str(value).encode(), str(value)
    if isinstance(value, float):
        return b"f" + repr(value).encode(), repr(value)
    if isinstance(value, str):
        return b"s" + utf8(value), repr(value)
    if isinstance(value, FileArg):
        return _encode_file(value.path, reader)
    if isinstance(value, SubArg):
        payload, shown = encode_value(value.values, reader)
        return b"o" + _framed([utf8(value.variant), payload]), f"{value.variant}{shown}"
    if isinstance(value, dict):
        parts, texts = [], []
        for key in sorted(value):
            item_bytes, item_text = encode_value(value[key], reader)
            parts += [utf8(key), item_bytes]
            texts.append(f"{key}: {item_text}")
        return b"d" + _framed(parts), "{" + ", ".join(texts) + "}"
    items = [encode_value(item, reader) for item in value]
    return (
        b"l" + _framed([payload for payload, _ in items]),
        "[" + ", ".join(text for _, text in items) + "]",
    )


def _encode_file(path: str, reader: Reader) -> tuple[bytes, str]:
    """A file by its name and content, and by every file its format reads with it (`vol.mih`
    and the `vol.dat` it names), each of those by its name relative to the file's folder."""
    name = os.path.basename(path)
    digest = digest_path(path, reader)
    parts = [utf8(name), digest.encode()]
    shown = f"file {name!r} xxh3:{digest}"
    folder = os.path.dirname(path)
    with_it = {}
    for companion in reader.companions_of(path):
        relative = os.path.relpath(companion, folder)
        companion_digest = digest_path(companion, reader)
        parts += [utf8(relative), companion_digest.encode()]
        shown += f" + {relative!r} xxh3:{companion_digest}"
        with_it[relative] = companion_digest
    reader.check_companions_belong(path)
    reader.files[path] = {"file": name, "xxh3": digest, "companions": with_it}
    return b"F" + _framed(parts), shown


def _framed(parts: list[bytes]) -> bytes:
    return _u64(len(parts)) + b"".join(_u64(len(p)) + p for p in parts)


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "little")  # struct.pack("<Q", n), without importing struct
