"""The key: a canonical, tagged, length-prefixed byte stream hashed with xxh3-128; file digests.

Each field is `tag, label, payload`, every part prefixed by its length, so that no two different
sets of inputs can produce the same stream (`["a b"]` and `["a", "b"]` differ). The same fields
are kept as text lines, which `imcache explain` shows and the record stores to diff a miss.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
from dataclasses import dataclass, field

import xxhash

from imcache.core.errors import UsageError
from imcache.core.interfaces.model import FileArg, SubArg, Value

KEY_FORMAT = 1
MMAP_THRESHOLD = 1 << 20  # below this a plain read is as fast and costs no mapping
READ_CHUNK = 1 << 24


@dataclass
class KeyStream:
    """Accumulates fields; `digest()` is the key, `lines` the same fields for people."""

    hasher: xxhash.xxh3_128 = field(default_factory=xxhash.xxh3_128)
    lines: list[str] = field(default_factory=list)

    def add(self, label: str, tag: bytes, payload: bytes, shown: str) -> None:
        for part in (tag, label.encode("utf-8", "surrogateescape"), payload):
            self.hasher.update(struct.pack("<Q", len(part)))
            self.hasher.update(part)
        self.lines.append(f"{label} = {shown}")

    def add_text(self, label: str, text: str) -> None:
        self.add(label, b"s", _utf8(text), repr(text))

    def add_value(self, label: str, value: Value) -> None:
        payload, shown = encode_value(value)
        self.add(label, b"v", payload, shown)

    def digest(self) -> str:
        return self.hasher.hexdigest()


def encode_value(value: Value | dict[str, Value]) -> tuple[bytes, str]:
    """A typed value as unambiguous bytes, and as text. Files count by name and content."""
    if isinstance(value, bool):
        return b"b" + (b"1" if value else b"0"), "true" if value else "false"
    if isinstance(value, int):
        return b"i" + str(value).encode(), str(value)
    if isinstance(value, float):
        return b"f" + repr(value).encode(), repr(value)
    if isinstance(value, str):
        return b"s" + _utf8(value), repr(value)
    if isinstance(value, FileArg):
        name = os.path.basename(value.path)
        digest = digest_path(value.path)
        return b"F" + _framed([_utf8(name), digest.encode()]), f"file {name!r} xxh3:{digest}"
    if isinstance(value, SubArg):
        payload, shown = encode_value(value.values)
        return b"o" + _framed([_utf8(value.variant), payload]), f"{value.variant}{shown}"
    if isinstance(value, dict):
        parts, texts = [], []
        for key in sorted(value):
            item_bytes, item_text = encode_value(value[key])
            parts += [_utf8(key), item_bytes]
            texts.append(f"{key}: {item_text}")
        return b"d" + _framed(parts), "{" + ", ".join(texts) + "}"
    items = [encode_value(item) for item in value]
    return (
        b"l" + _framed([payload for payload, _ in items]),
        "[" + ", ".join(text for _, text in items) + "]",
    )


def _framed(parts: list[bytes]) -> bytes:
    return struct.pack("<Q", len(parts)) + b"".join(struct.pack("<Q", len(p)) + p for p in parts)


def _utf8(text: str) -> bytes:
    # surrogateescape keeps file names that are not UTF-8 (Linux allows any bytes) distinct.
    return text.encode("utf-8", "surrogateescape")


def digest_path(path: str) -> str:
    """xxh3-128 of a file's content, or of a folder's sorted tree."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            return digest_tree(path)
        return digest_file(path, info.st_size)
    except OSError as exc:
        raise UsageError(
            f"cannot read input {path!r}: {exc.strerror}", "check that it exists and is readable"
        ) from exc


def digest_file(path: str, size: int | None = None) -> str:
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size if size is None else size
        if size >= MMAP_THRESHOLD:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                hasher.update(mapped)
        else:
            while chunk := handle.read(READ_CHUNK):
                hasher.update(chunk)
    return hasher.hexdigest()


def digest_tree(root: str) -> str:
    """Every entry by relative name and kind, files by content.

    A link counts by its target text and by what it points at (the tool reads through it), so a
    changed target changes the digest; a link back up the tree counts by its text alone.
    """
    hasher = xxhash.xxh3_128()
    for relative, kind, payload in _walk(root, "", frozenset({os.path.realpath(root)})):
        for part in (_utf8(relative), kind, payload):
            hasher.update(struct.pack("<Q", len(part)))
            hasher.update(part)
    return hasher.hexdigest()


def _walk(folder: str, prefix: str, chain: frozenset[str]) -> list[tuple[str, bytes, bytes]]:
    found: list[tuple[str, bytes, bytes]] = []
    with os.scandir(folder) as entries:
        ordered = sorted(entries, key=lambda entry: entry.name)
    for entry in ordered:
        relative = f"{prefix}/{entry.name}" if prefix else entry.name
        if entry.is_symlink():
            found.append((relative, b"l", _utf8(os.readlink(entry.path))))
        real = os.path.realpath(entry.path)
        if entry.is_dir():
            if real in chain:
                continue
            found.append((relative, b"d", b""))
            found += _walk(entry.path, relative, chain | {real})
        elif entry.is_file():
            found.append((relative, b"f", digest_file(entry.path).encode()))
        elif not entry.is_symlink():
            found.append((relative, b"?", b""))
    return found
