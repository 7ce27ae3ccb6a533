"""The remote action record: what a pushed entry holds, and the checks a fetched one must pass.

`ac/<Interface>/<key>.json` names every file of the entry (outputs, logs, configuration files) by
relative path with its size, mode and sha256 (or a link's text), the tool's identity, who published
it and when, the local record to write on a fetch, and `digest`, a sha256 of the rest of itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from imcache.core.errors import RemoteDataError
from imcache.core.layout import REMOTE_LAYOUT, RESERVED, SHA256_PATTERN

READ_CHUNK = 1024 * 1024


def action_digest(action: dict[str, Any]) -> str:
    content = {name: value for name, value in action.items() if name != "digest"}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def encode_action(action: dict[str, Any]) -> bytes:
    action = {**action, "digest": action_digest(action)}
    return json.dumps(action, indent=1, sort_keys=True).encode()


def decode_action(payload: bytes, interface: str, key: str, where: str) -> dict[str, Any]:
    """The record if it is intact and for this key; else a RemoteError saying what is wrong."""
    try:
        action = json.loads(payload)
    except ValueError:
        action = None
    problem = ""
    if not isinstance(action, dict) or action.get("remote_layout") != REMOTE_LAYOUT:
        problem = "is not an imcache action record of this layout"
    elif action.get("digest") != action_digest(action):
        problem = "was edited (its digest does not match)"
    elif action.get("key") != key or action.get("interface") != interface:
        problem = "is for another key"
    elif not isinstance(action.get("record"), dict) or not isinstance(action.get("files"), dict):
        problem = "lacks its files or its record"
    else:
        files = action["files"]
        problem = next((p for p in map(_file_problem, files.items()) if p), "") or _below_link(
            files
        )
    if problem:
        raise RemoteDataError(
            f"the remote record {where} {problem}; not used",
            "remove it from the bucket (or let its lifecycle rule expire it)",
        )
    return dict(action)


def _file_problem(item: tuple[str, Any]) -> str:
    """A file entry that would write outside the entry, or over imcache's own files, is refused."""
    relative, info = item
    parts = relative.split("/")
    if os.path.isabs(relative) or any(p in ("", ".", "..") for p in parts) or relative in RESERVED:
        return f"names the file {relative!r}, which no entry may hold"
    if not isinstance(info, dict):
        return f"describes {relative!r} badly"
    if "link" in info:
        return "" if isinstance(info["link"], str) else f"describes the link {relative!r} badly"
    sha = info.get("sha256")
    if not isinstance(sha, str) or not SHA256_PATTERN.fullmatch(sha):
        return f"gives {relative!r} no sha256"
    if not isinstance(info.get("size"), int) or not isinstance(info.get("mode"), int):
        return f"gives {relative!r} no size or mode"
    return ""


def _below_link(files: dict[str, Any]) -> str:
    """A file named below a link the record also makes would be written through that link,
    wherever it points (outside the cache root)."""
    links = {name for name, info in files.items() if "link" in info}
    for relative in files:
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in links:
                return f"names the file {relative!r} below the link {'/'.join(parts[:depth])!r}"
    return ""


class Digests:
    """sha256 (the remote's name for a file) and xxh3 (the local record's), in one pass."""

    def __init__(self) -> None:
        import xxhash

        self.sha256 = hashlib.sha256()
        self.xxh3 = xxhash.xxh3_128()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self.sha256.update(chunk)
        self.xxh3.update(chunk)
        self.size += len(chunk)


def digest_local(path: str) -> Digests:
    """Both digests of a local file, read in chunks (no mmap: a 1 GiB file stays out of memory)."""
    digests = Digests()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digests.update(chunk)
    return digests
