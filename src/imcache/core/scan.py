"""What the cache holds, read from the disk: its entries, their last use and size, and the rest.

A scan sorts every name under the root: complete entries, leftovers of failed, interrupted or
half-deleted attempts, lock files whose entry is gone, and strays (not imcache's: reported, never
removed). `ls`, `show`, `stats`, `clear`, `session status` and `verify` all start from one.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import os
import stat
import time
from typing import Any

from imcache.core.datatype import datatype, field
from imcache.core.entry import record_inputs, tree_bytes
from imcache.core.errors import CacheError, ImcacheError, UsageError
from imcache.core.layout import (
    KEY_PREFIX_PATTERN,
    LEFTOVER_PATTERN,
    RECORD,
    ROOT_FILES,
    USED_MARK,
    is_failed,
    is_key,
    is_temporary,
    key_of_lock,
)
from imcache.core.store import Store


@datatype
class Entry:
    interface: str
    key: str
    path: str
    last_used_ns: int
    created_ns: int
    bytes: int
    summary: builtins.bytes | None = None  # the mark's second line: the inputs (`inputs_of`)


@datatype(frozen=False)
class Scan:
    entries: list[Entry] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # failed, interrupted, half-deleted
    strays: list[str] = field(default_factory=list)  # not imcache's: reported, never removed
    orphan_locks: list[str] = field(default_factory=list)  # lock files whose entry is gone


def scan(store: Store) -> Scan:
    store.refuse_link()
    found = Scan()
    try:
        names = sorted(os.listdir(store.root))
    except FileNotFoundError:
        return found
    except NotADirectoryError:
        raise _not_a_folder(store.root) from None
    for name in names:
        path = os.path.join(store.root, name)
        if name in ROOT_FILES or is_temporary(name):
            continue
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            _scan_interface(path, name, found)
        else:
            found.strays.append(path)
    return found


def failed_bytes(store: Store) -> int:
    """What failed attempts take on disk (what `clear --failed` would free)."""
    total = 0
    with contextlib.suppress(OSError):
        for path in scan(store).leftovers:
            if is_failed(os.path.basename(path)):
                with contextlib.suppress(OSError):
                    total += tree_bytes(path)
    return total


def _not_a_folder(root: str) -> CacheError:
    try:
        mode = os.lstat(root).st_mode
    except OSError:  # replaced meanwhile
        mode = 0
    return CacheError(
        f"cache root {root} is {_kind(mode)}, not a folder",
        "move it aside, or point the cache at another base folder",
    )


def _kind(mode: int) -> str:
    """What a file that is not a folder is, in words."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((word for test, word in kinds if test(mode)), "something else")


def _scan_interface(folder: str, interface: str, found: Scan) -> None:
    with os.scandir(folder) as listing:
        children = sorted(listing, key=lambda c: c.name)
    # The folders listed, so that a lock's entry is looked up here, not with a stat each.
    folders = {child.name for child in children if child.is_dir(follow_symlinks=False)}
    for child in children:
        name = child.name
        if child.is_dir(follow_symlinks=False) and is_key(name):
            try:
                found.entries.append(read_entry(child.path, interface, name))
            except FileNotFoundError:
                if os.path.isdir(child.path):  # else removed by another clear meanwhile
                    found.leftovers.append(child.path)  # no record: running, or interrupted
        elif child.is_dir(follow_symlinks=False) and LEFTOVER_PATTERN.fullmatch(name):
            found.leftovers.append(child.path)
        elif (key := key_of_lock(name)) is not None and child.is_file():
            if key not in folders and not os.path.isdir(os.path.join(folder, key)):
                found.orphan_locks.append(child.path)
        else:
            found.strays.append(child.path)


MARK_READ = 1 << 16  # a longer mark is not ours, or lists so many inputs that the record serves


def read_entry(path: str, interface: str, key: str) -> Entry:
    """The entry at `path` as it is now (FileNotFoundError: it has no record, or is gone)."""
    record_info = os.stat(os.path.join(path, RECORD))
    used, size, summary = _read_mark(path)
    if used is None:
        used = record_info.st_mtime_ns  # an entry without a mark: its record's time
    if size is None:
        size = tree_bytes(path)
    return Entry(interface, key, path, used, record_info.st_mtime_ns, size, summary)


def _read_mark(path: str) -> tuple[int | None, int | None, bytes | None]:
    """The mark's mtime is the last use; its text, the size written when the entry was made
    and (entries made since issue 17) a line of its inputs."""
    # os.open and os.read, not open(): a scan reads 100,000 marks, and a file object for each
    # cost more than the system calls.
    try:
        fd = os.open(os.path.join(path, USED_MARK), os.O_RDONLY)
    except OSError:
        return None, None, None
    try:
        used = os.fstat(fd).st_mtime_ns
        text = os.read(fd, MARK_READ)
    except OSError:
        return None, None, None
    finally:
        os.close(fd)
    first, _, rest = text.partition(b"\n")
    size = int(first) if first.strip().isdigit() else None
    summary = rest[:-1] if rest.endswith(b"\n") and rest.count(b"\n") == 1 else None
    return used, size, summary


def inputs_of(entry: Entry) -> dict[str, str]:
    """The entry's inputs as its key fields show them: from its mark, else from its record
    (an entry made before the mark held them, or a mark that is not ours)."""
    if entry.summary is not None:
        try:
            inputs = json.loads(entry.summary)
        except ValueError:
            inputs = None
        if isinstance(inputs, dict) and all(isinstance(v, str) for v in inputs.values()):
            return inputs
    return record_inputs(read_record(entry))


# --- one entry ----------------------------------------------------------------------------------


def find_entry(store: Store, prefix: str) -> Entry:
    """The one entry whose key starts with `prefix` (at least 4 hex digits)."""
    if not KEY_PREFIX_PATTERN.fullmatch(prefix):
        raise UsageError(f"{prefix!r} is not a key prefix", "give 4 to 32 hex digits of a key")
    matches = [e for e in scan(store).entries if e.key.startswith(prefix)]
    if not matches:
        raise ImcacheError(f"no entry has a key starting with {prefix}", "'imcache ls' lists them")
    if len(matches) > 1:
        raise UsageError(
            f"{len(matches)} entries have keys starting with {prefix}",
            "give more digits of the key",
        )
    return matches[0]


def read_record(entry: Entry) -> dict[str, Any]:
    """The entry's record as it is, for a look inside ({} if it cannot be read)."""
    try:
        with open(os.path.join(entry.path, RECORD), "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def format_time(ns: int) -> str:
    """A moment as local ISO time to the second, as listings and sessions show it.

    What `datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="seconds")` gives
    (a test holds them together), at a fifth of its cost: `ls` formats two per entry."""
    seconds = ns / 1e9
    whole = math.floor(seconds)
    if round((seconds - whole) * 1e6) >= 1_000_000:  # fromtimestamp rounds to microseconds
        whole += 1
    local = time.localtime(whole)
    offset = local.tm_gmtoff or 0
    sign, offset = ("-", -offset) if offset < 0 else ("+", offset)
    zone = f"{sign}{offset // 3600:02d}:{offset // 60 % 60:02d}"
    if offset % 60:
        zone += f":{offset % 60:02d}"
    return (
        f"{local.tm_year:04d}-{local.tm_mon:02d}-{local.tm_mday:02d}T"
        f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d}{zone}"
    )
