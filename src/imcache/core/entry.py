"""One entry's contents judged: its record read, checked and encoded, its outputs checked, its size.

An entry is complete only once its record `imcache.json` exists and is intact: it parses, is of
this layout, and its checksum matches its content. The output checks here serve a hit and `verify`
alike: every recorded output present, at its recorded signature (inode, size, mtime, ctime: one
stat each), and an output whose signature moved (an export's hard link, an edit in place) read
again against its recorded digest. Where entries live and how a record is published is the
store's; reading every other file's digest is `verify`'s.
"""

from __future__ import annotations

import os
import stat
import time

import xxhash

from imcache.core import cjson
from imcache.core.hashing import DigestMemo, digest_file
from imcache.core.layout import LAYOUT, MARK_WIDTH, RECORD

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def read_record(entry: str) -> dict[str, Any] | None:
    """The record of a complete entry, or None: absent, cut short or not ours is a miss."""
    record, _problem = check_record(entry)
    return record


def check_record(entry: str) -> tuple[dict[str, Any] | None, str]:
    """The record if intact; else None and what is wrong with it ("" when there is none)."""
    path = os.path.join(entry, RECORD)
    try:
        with open(path, "rb") as handle:
            payload = handle.read()
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"its record cannot be read ({exc.strerror})"
    try:
        record = cjson.loads(payload)
    except ValueError:
        return None, "its record is not valid JSON (cut short or edited)"
    if not isinstance(record, dict) or record.get("layout") != LAYOUT:
        return None, "its record is not one of this imcache's"
    if record.get("check") != record_check(record):
        return None, "its record was edited (checksum mismatch)"
    return record, ""


def encode_record(record: dict[str, Any]) -> bytes:
    """The record as written to disk: its checksum added, so that `check_record` notices edits."""
    import json  # a run only (indented): a hit reads records with cjson

    record = {**record, "check": record_check(record)}
    return json.dumps(record, indent=1, sort_keys=True).encode("utf-8")


def record_check(record: dict[str, Any]) -> str:
    """A checksum of the record's content (its own `check` field aside), to notice edits."""
    content = {name: value for name, value in record.items() if name != "check"}
    return xxhash.xxh3_128_hexdigest(cjson.dumps(content, sort_keys=True).encode())


def record_inputs(record: dict[str, Any]) -> dict[str, str]:
    """Each input as the record's key fields show it (`input.NAME = shown`)."""
    inputs = {}
    for line in record.get("key_fields", []):
        label, _, shown = str(line).partition(" = ")
        if label.startswith("input."):
            inputs[label[6:]] = shown
    return inputs


def mark_text(size_without_mark: int, record: dict[str, Any], now_ns: int | None = None) -> bytes:
    """The used mark's text: the entry's size (the mark's own bytes included) on its first line,
    the moment it was published on the second (written just before the record: a scan then
    needs no `stat` of the record), its inputs as `ls --json` shows them on the third, so that
    `ls` parses no record. Older marks hold the first line, or the first and the inputs."""
    summary = cjson.dumps(record_inputs(record)).encode() + b"\n"
    size = size_without_mark + 2 * MARK_WIDTH + len(summary)
    created = time.time_ns() if now_ns is None else now_ns
    return f"{size:>{MARK_WIDTH - 1}}\n{created:>{MARK_WIDTH - 1}}\n".encode() + summary


MARK_READ = 1 << 16  # a longer mark is not ours, or lists so many inputs that the record serves


def mark_fields(text: bytes) -> tuple[int, int, bytes | None] | None:
    """What a mark `mark_text` wrote holds: the size, the moment of publishing, and the inputs
    line (None if it is not one line); None for an older mark, or none of ours."""
    lines = text.split(b"\n", 2)
    if len(lines) == 3 and len(lines[0]) == len(lines[1]) == MARK_WIDTH - 1:
        size, created, rest = lines
        if size.lstrip().isdigit() and created.lstrip().isdigit():
            summary = rest[:-1] if rest[-1:] == b"\n" and rest.count(b"\n") == 1 else None
            return int(size), int(created), summary
    return None


def is_value(item: Any) -> bool:
    """An output that is a value (a number, a list: nipype's), kept as {"value": ...}."""
    return isinstance(item, dict) and "value" in item and "path" not in item


def output_damage(
    entry: str, record: dict[str, Any], memo: DigestMemo | None = None, *, rehash: bool = True
) -> str:
    """What is wrong with a recorded entry's outputs ("" if nothing): one stat per output while
    its signature is the recorded one; else its content read against the recorded digest (the
    memo, once it has vouched for the new signature, spares that read next time). `rehash`
    False leaves contents to the caller (`verify` reads every file anyway)."""
    real_entry: str | None = None
    files = record.get("files")
    for value in record.get("outputs", {}).values():
        if is_value(value):
            continue
        for item in value if isinstance(value, list) else [value]:
            try:
                relative = item["path"]
                info = os.lstat(os.path.join(entry, relative))
            except (OSError, KeyError, TypeError):
                return f"{item!r} is missing"
            if item.get("size") is not None and info.st_size != item["size"]:
                return f"{relative} changed size"
            if stat.S_ISLNK(info.st_mode):
                real_entry = real_entry or os.path.realpath(entry)
                if not _inside(os.path.join(entry, relative), real_entry):
                    return f"{relative} is a symbolic link out of the entry"
            if stat.S_ISDIR(info.st_mode):
                continue  # a folder output's files are `verify`'s to read
            if output_signature(info) == item.get("signature") or not rehash:
                continue
            expected = files.get(relative) if isinstance(files, dict) else None
            problem = _content_damage(os.path.join(entry, relative), info, expected, memo)
            if problem:
                return f"{relative} {problem}"
    return ""


def output_signature(info: os.stat_result) -> list[int]:
    """What the record keeps of an output to tell by one stat that it is untouched."""
    return [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


def _inside(path: str, real_entry: str) -> bool:
    return os.path.realpath(path).startswith(real_entry + os.sep)


def _content_damage(path: str, info: os.stat_result, expected: Any, memo: DigestMemo | None) -> str:
    """An output whose signature moved: still the recorded content? ("" if so)."""
    if not isinstance(expected, dict):
        return "changed, and the record holds no digest to check it against"
    if stat.S_ISLNK(info.st_mode):
        return "" if os.readlink(path) == expected.get("link") else "is no longer the link it was"
    if not stat.S_ISREG(info.st_mode) or "xxh3" not in expected:
        return "is no longer what was cached"
    if memo is not None and memo.get(info) == expected["xxh3"]:
        return ""
    started_ns = time.time_ns()
    try:
        digest = digest_file(path, info.st_size)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if digest != expected["xxh3"]:
        return "was changed after it was cached (digest mismatch)"
    if memo is not None:
        memo.put(info, digest, started_ns)  # the next hit is one stat again
    return ""


def tree_bytes(path: str) -> int:
    """Bytes of every file below `path`, links not followed."""
    total = 0
    with os.scandir(path) as children:
        for child in children:
            if child.is_dir(follow_symlinks=False):
                total += tree_bytes(child.path)
            else:
                total += child.stat(follow_symlinks=False).st_size
    return total
