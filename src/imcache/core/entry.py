"""One entry's contents judged: its record read, checked and encoded, its outputs checked, its size.

An entry is complete only once its record `imcache.json` exists and is intact: it parses, is of
this layout, and its checksum matches its content. The cheap output checks here (every recorded
output present, files at their recorded sizes) serve a hit and `verify` alike; where entries live
and how a record is published is the store's, and reading every file's digest is `verify`'s.
"""

from __future__ import annotations

import json
import os
from typing import Any

import xxhash

from imcache.core.layout import LAYOUT, RECORD


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
        record = json.loads(payload)
    except ValueError:
        return None, "its record is not valid JSON (cut short or edited)"
    if not isinstance(record, dict) or record.get("layout") != LAYOUT:
        return None, "its record is not one of this imcache's"
    if record.get("check") != record_check(record):
        return None, "its record was edited (checksum mismatch)"
    return record, ""


def encode_record(record: dict[str, Any]) -> bytes:
    """The record as written to disk: its checksum added, so that `check_record` notices edits."""
    record = {**record, "check": record_check(record)}
    return json.dumps(record, indent=1, sort_keys=True).encode("utf-8")


def record_check(record: dict[str, Any]) -> str:
    """A checksum of the record's content (its own `check` field aside), to notice edits."""
    content = {name: value for name, value in record.items() if name != "check"}
    return xxhash.xxh3_128_hexdigest(json.dumps(content, sort_keys=True).encode())


def is_value(item: Any) -> bool:
    """An output that is a value (a number, a list: nipype's), kept as {"value": ...}."""
    return isinstance(item, dict) and "value" in item and "path" not in item


def output_damage(entry: str, record: dict[str, Any]) -> str:
    """Cheap checks of a recorded entry: every output still there, files at their sizes."""
    for value in record.get("outputs", {}).values():
        if is_value(value):
            continue
        for item in value if isinstance(value, list) else [value]:
            try:
                info = os.lstat(os.path.join(entry, item["path"]))
            except (OSError, KeyError, TypeError):
                return f"{item!r} is missing"
            if item.get("size") is not None and info.st_size != item["size"]:
                return f"{item['path']} changed size"
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
