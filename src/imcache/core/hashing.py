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
from typing import Any

import xxhash

from imcache.core.errors import InputChangedError, UsageError
from imcache.core.interfaces.model import FileArg, SubArg, Value

KEY_FORMAT = 1
# What says a file is still the one we hashed: replaced (dev, inode), resized, or written to (any
# write moves mtime and ctime). Compared after hashing and again after the tool has run.
Signature = tuple[int, int, int, int, int]
Seen = dict[str, Signature]
MMAP_THRESHOLD = 1 << 20  # below this a plain read is as fast and costs no mapping
READ_CHUNK = 1 << 24


@dataclass
class KeyStream:
    """Accumulates fields; `digest()` is the key, `lines` the same fields for people."""

    hasher: xxhash.xxh3_128 = field(default_factory=xxhash.xxh3_128)
    lines: list[str] = field(default_factory=list)
    seen: Seen = field(default_factory=dict)  # every input file and folder read, as hashed

    def add(self, label: str, tag: bytes, payload: bytes, shown: str) -> None:
        for part in (tag, label.encode("utf-8", "surrogateescape"), payload):
            self.hasher.update(struct.pack("<Q", len(part)))
            self.hasher.update(part)
        self.lines.append(f"{label} = {shown}")

    def add_text(self, label: str, text: str) -> None:
        self.add(label, b"s", _utf8(text), repr(text))

    def add_value(self, label: str, value: Value) -> None:
        payload, shown = encode_value(value, self.seen)
        self.add(label, b"v", payload, shown)

    def digest(self) -> str:
        return self.hasher.hexdigest()


def encode_value(value: Value | dict[str, Value], seen: Seen | None = None) -> tuple[bytes, str]:
    """A typed value as unambiguous bytes, and as text. Files count by name and content.

    The signature of every file read is added to `seen`, to tell later whether it changed."""
    seen = {} if seen is None else seen
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
        digest = digest_path(value.path, seen)
        return b"F" + _framed([_utf8(name), digest.encode()]), f"file {name!r} xxh3:{digest}"
    if isinstance(value, SubArg):
        payload, shown = encode_value(value.values, seen)
        return b"o" + _framed([_utf8(value.variant), payload]), f"{value.variant}{shown}"
    if isinstance(value, dict):
        parts, texts = [], []
        for key in sorted(value):
            item_bytes, item_text = encode_value(value[key], seen)
            parts += [_utf8(key), item_bytes]
            texts.append(f"{key}: {item_text}")
        return b"d" + _framed(parts), "{" + ", ".join(texts) + "}"
    items = [encode_value(item, seen) for item in value]
    return (
        b"l" + _framed([payload for payload, _ in items]),
        "[" + ", ".join(text for _, text in items) + "]",
    )


def _framed(parts: list[bytes]) -> bytes:
    return struct.pack("<Q", len(parts)) + b"".join(struct.pack("<Q", len(p)) + p for p in parts)


def _utf8(text: str) -> bytes:
    # surrogateescape keeps file names that are not UTF-8 (Linux allows any bytes) distinct.
    return text.encode("utf-8", "surrogateescape")


def signature(info: os.stat_result) -> Signature:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def changed_since(seen: Seen) -> list[str]:
    """The inputs of `seen` that are no longer what was hashed (gone, replaced or written)."""
    changed = []
    for path, before in seen.items():
        try:
            now = signature(os.stat(path))
        except OSError:
            changed.append(path)
            continue
        if now != before:
            changed.append(path)
    return changed


def digest_path(path: str, seen: Seen | None = None) -> str:
    """xxh3-128 of a file's content, or of a folder's sorted tree."""
    seen = {} if seen is None else seen
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            digest = digest_tree(path, seen)
        else:
            digest = digest_file(path, info.st_size)
        _check_unchanged(path, info, seen)
        return digest
    except OSError as exc:
        culprit = exc.filename if isinstance(exc.filename, str) else path  # the file in a folder
        raise UsageError(
            f"cannot read input {culprit!r}: {exc.strerror}",
            "check that it exists and is readable",
        ) from exc


def _check_unchanged(path: str, before: os.stat_result, seen: Seen) -> None:
    """A file written to while we read it has no one content: refuse rather than key on a mix."""
    after = os.stat(path)
    if signature(after) != signature(before):
        raise InputChangedError(
            f"input {path!r} changed while imcache was reading it",
            "run again once nothing writes to it any more; nothing was run or cached",
        )
    seen[path] = signature(before)


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


def digest_tree(root: str, seen: Seen | None = None) -> str:
    """Every entry by relative name and kind, files by content.

    A link counts by its target text and by what it points at (the tool reads through it), so a
    changed target changes the digest; a link back up the tree counts by its text alone.
    """
    hasher = xxhash.xxh3_128()
    seen = {} if seen is None else seen
    for relative, kind, payload in _walk(root, "", frozenset({os.path.realpath(root)}), seen):
        for part in (_utf8(relative), kind, payload):
            hasher.update(struct.pack("<Q", len(part)))
            hasher.update(part)
    return hasher.hexdigest()


def _walk(
    folder: str, prefix: str, chain: frozenset[str], seen: Seen
) -> list[tuple[str, bytes, bytes]]:
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
            before = os.stat(entry.path)  # a name added or removed below moves its mtime
            found += _walk(entry.path, relative, chain | {real}, seen)
            _check_unchanged(entry.path, before, seen)
        elif entry.is_file():
            before = os.stat(entry.path)
            found.append((relative, b"f", digest_file(entry.path, before.st_size).encode()))
            _check_unchanged(entry.path, before, seen)
        elif not entry.is_symlink():
            found.append((relative, b"?", b""))
    return found


def file_digests(root: str, skip: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """Every file below `root` (links not followed) by relative path: size and xxh3, or link text.

    What `imcache verify` checks an entry against, long after it was made."""
    found: dict[str, dict[str, Any]] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root)
            if relative in skip:
                continue
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[relative] = {"link": os.readlink(path)}
            elif stat.S_ISREG(info.st_mode):
                found[relative] = {"size": info.st_size, "xxh3": digest_file(path, info.st_size)}
    return dict(sorted(found.items()))
