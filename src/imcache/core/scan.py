"""What the cache holds, read from the disk: its entries, their last use and size, and the rest.

A scan sorts every name under the root: complete entries, leftovers of failed, interrupted or
half-deleted attempts, lock files whose entry is gone, and strays (not imcache's: reported, never
removed). `ls`, `show`, `stats`, `clear`, `session status` and `verify` all start from one.
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import json
import os
import stat
from itertools import chain, compress
from operator import attrgetter, itemgetter, methodcaller
from typing import TYPE_CHECKING, Any, NamedTuple

from imcache.core.datatype import datatype, field
from imcache.core.entry import MARK_READ, mark_fields, record_inputs, tree_bytes
from imcache.core.errors import CacheError, ImcacheError, UsageError
from imcache.core.index import Read, read_index
from imcache.core.layout import (
    KEY_PREFIX_PATTERN,
    LEFTOVER_PATTERN,
    LOCK_SUFFIX,
    RECORD,
    ROOT_FILES,
    USED_MARK,
    is_failed,
    is_key,
    is_temporary,
    key_of_lock,
)
from imcache.core.moments import format_time as format_time  # where listings found it
from imcache.core.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterable


class Entry(NamedTuple):
    """One complete entry as a scan found it. A named tuple, not a datatype: a scan makes
    100,000 of them, and a tuple is made at a tenth of the cost."""

    interface: str
    key: str
    path: str
    last_used_ns: int
    created_ns: int
    bytes: int
    summary: builtins.bytes | None = None  # the mark's inputs line (`inputs_of`)
    mark_inode: int = 0  # of a mark `mark_text` wrote (0: an older one, or none): index lines


@datatype(frozen=False)
class Scan:
    entries: list[Entry] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # failed, interrupted, half-deleted
    strays: list[str] = field(default_factory=list)  # not imcache's: reported, never removed
    orphan_locks: list[str] = field(default_factory=list)  # lock files whose entry is gone
    indexes: dict[str, Read] = field(default_factory=dict)  # interface -> its index as read
    linked_locks: set[str] = field(default_factory=set)  # lock files that are links (by hand):
    # their lock is their target's, which no listing numbers (a dry run asks them one by one)
    unindexed: dict[str, int] = field(
        default_factory=dict
    )  # interface -> entries a line would serve


def scan(store: Store) -> Scan:
    # No cyclic garbage collection while 100,000 entries are made: each pass walks every tuple
    # made so far, and none of them is garbage (a quarter of a large scan's time went to it).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _scan(store)
    finally:
        if collecting:
            gc.enable()


def _scan(store: Store) -> Scan:
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
            _scan_interface(store.root, name, found)
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


def _scan_interface(root: str, interface: str, found: Scan) -> None:
    """An interface folder: its entries as its index describes them (no system call for each),
    then whatever else its listing holds."""
    folder = os.path.join(root, interface)
    with os.scandir(folder) as listing:  # the listing's types, no stat: a link is no entry
        listed = list(listing)
    names = list(map(NAME, listed))  # map and compress: C loops over 200,000 names
    folders = set(compress(names, map(IS_FOLDER, listed)))
    links = list(compress(names, map(IS_LINK, listed)))
    index = found.indexes[interface] = read_index(root, interface)
    indexed = sorted(folders.intersection(index.lines))
    prefix = folder + os.sep  # not os.path.join: a scan joins 100,000 names
    uses, new, first = index.uses, tuple.__new__, len(found.entries)
    found.entries += [  # Entry(...) in C: a tuple made directly, not through a Python __new__
        new(Entry, (interface, key, prefix + key, uses.get(key, line[0]), *line))
        for key, line in zip(indexed, map(index.lines.__getitem__, indexed), strict=True)
    ]
    keys = set(indexed)  # the key folders listed: their locks are no strays
    rest = set(names) - keys - {key + LOCK_SUFFIX for key in indexed}
    found.linked_locks.update(prefix + name for name in links if name.endswith(LOCK_SUFFIX))
    found.unindexed[interface] = 0
    if rest and _scan_rest(prefix, interface, sorted(rest), folders, keys, found):
        found.entries[first:] = sorted(found.entries[first:], key=itemgetter(1))  # by key


def _scan_rest(
    prefix: str, interface: str, names: list[str], folders: set[str], keys: set[str], found: Scan
) -> int:
    """What no index line describes: entries read from their marks (how many: made before the
    index, or their line lost), their locks, leftovers of attempts, lock files whose entry is
    gone, and strays."""
    strays = []
    unindexed = read = 0
    for name in names:
        if name not in folders:
            continue
        if is_key(name):
            keys.add(name)
            try:
                entry = read_entry(prefix + name, interface, name)
            except FileNotFoundError:
                if os.path.isdir(prefix + name):  # else removed by another clear meanwhile
                    found.leftovers.append(prefix + name)  # no record: running, or interrupted
                continue
            found.entries.append(entry)
            read += 1
            unindexed += entry.mark_inode != 0 and entry.summary is not None  # a line would do
        elif LEFTOVER_PATTERN.fullmatch(name):
            found.leftovers.append(prefix + name)
        else:
            strays.append(prefix + name)
    for name in names:
        if name in folders or (name.endswith(LOCK_SUFFIX) and name[: -len(LOCK_SUFFIX)] in keys):
            continue  # a folder, or the lock of a key folder listed
        if (key := key_of_lock(name)) is not None and os.path.isfile(prefix + name):
            if not os.path.isdir(prefix + key):  # made since the listing, or not
                found.orphan_locks.append(prefix + name)
        else:
            strays.append(prefix + name)
    found.unindexed[interface] = unindexed
    found.strays += sorted(strays)
    return read


MARK_TAIL = os.sep + USED_MARK
NAME = attrgetter("name")
IS_FOLDER = methodcaller("is_dir", follow_symlinks=False)
IS_LINK = methodcaller("is_symlink")


def read_entry(path: str, interface: str, key: str) -> Entry:
    """The entry at `path` as it is now (FileNotFoundError: it has no record, or is gone).

    A mark written at publish (just before the record) says all a scan needs: one open, fstat
    and read. An older mark, or none, leaves the entry's time to its record, as before."""
    # os.open and os.read, not open(): a scan reads 100,000 marks, and a file object for each
    # cost more than the system calls. Its mtime from the same descriptor: no second lookup.
    try:
        fd = os.open(path + MARK_TAIL, os.O_RDONLY)
    except OSError:
        return _older_entry(path, interface, key, None, b"")
    try:
        info, text = os.fstat(fd), os.read(fd, MARK_READ)
    except OSError:
        return _older_entry(path, interface, key, None, b"")
    finally:
        os.close(fd)
    fields = mark_fields(text)
    if fields is None:
        return _older_entry(path, interface, key, info.st_mtime_ns, text)
    size, created, summary = fields
    return Entry(interface, key, path, info.st_mtime_ns, created, size, summary, info.st_ino)


def lock_inodes(store: Store, interfaces: Iterable[str]) -> dict[str, int]:
    """The interfaces' lock files (regular files: a link's inode is not its target's) and their
    inodes as the listing gives them, without a stat: what `lock_census` matches."""
    found = {}
    for interface in interfaces:
        prefix = os.path.join(store.root, interface) + os.sep
        with contextlib.suppress(OSError), os.scandir(prefix) as listing:
            for child in listing:
                if child.name.endswith(LOCK_SUFFIX) and child.is_file(follow_symlinks=False):
                    found[prefix + child.name] = child.inode()
    return found


def used_now(entry: Entry) -> int:
    """The entry's last use as it is now (FileNotFoundError: gone), from its mark, the record
    every use keeps: one stat. The later of it and the use the scan found stands (a mark this
    user may not touch: another user's, in a shared cache)."""
    if entry.mark_inode:
        try:
            info = os.stat(entry.path + MARK_TAIL)
        except FileNotFoundError:  # the entry is gone, or has no mark: as its record says
            info = None
        if info is not None and info.st_ino == entry.mark_inode:  # else another entry since
            return max(info.st_mtime_ns, entry.last_used_ns)
    return read_entry(entry.path, entry.interface, entry.key).last_used_ns


def _older_entry(path: str, interface: str, key: str, used: int | None, mark: bytes) -> Entry:
    """An entry whose mark holds its size, or its size and inputs, or that has no mark: the
    record's time is when it was made (and its last use, without a mark)."""
    size_line, _, rest = mark.partition(b"\n")
    created = os.stat(os.path.join(path, RECORD)).st_mtime_ns
    size = int(size_line) if size_line.strip().isdigit() else tree_bytes(path)
    summary = rest[:-1] if rest.endswith(b"\n") and rest.count(b"\n") == 1 else None
    return Entry(interface, key, path, created if used is None else used, created, size, summary)


def inputs_of(entry: Entry) -> dict[str, str]:
    """The entry's inputs as its key fields show them: from its mark, else from its record
    (an entry made before the mark held them, or a mark that is not ours)."""
    if entry.summary is not None:
        try:
            inputs = json.loads(entry.summary)
        except ValueError:
            inputs = None
        if _is_inputs(inputs):
            return inputs  # type: ignore[no-any-return]
    return record_inputs(read_record(entry))


def inputs_of_all(entries: list[Entry]) -> list[dict[str, str]]:
    """`inputs_of` of each entry: their marks' lines parsed as one JSON array (one call into
    the decoder instead of 100,000), or one by one if any is not what a mark of ours holds."""
    parsed = _parsed_summaries(entries)
    return [inputs_of(entry) for entry in entries] if parsed is None else parsed


def inputs_json_all(entries: list[Entry]) -> list[str]:
    """Each entry's inputs as JSON text: its mark's line as it is, once all of them parse as
    inputs (a mark's line is `json.dumps` of them: no need to decode and encode them again)."""
    parsed = _parsed_summaries(entries)
    if parsed is None:
        return [json.dumps(inputs_of(entry)) for entry in entries]
    if not b"".join(entry.summary or b"" for entry in entries).isascii():  # not json.dumps's
        return [json.dumps(inputs) for inputs in parsed]
    return [entry.summary.decode("ascii", "replace") for entry in entries]  # type: ignore[union-attr]


def _parsed_summaries(entries: list[Entry]) -> list[dict[str, str]] | None:
    summaries = [entry.summary for entry in entries]
    if not all(summary is not None and summary[:1] == b"{" for summary in summaries):
        return None
    try:
        # Joined by a newline, which no JSON string holds raw: a damaged mark that ends inside
        # a string cannot be closed by the next one (the two read as one entry's inputs).
        parsed = json.loads(b"[" + b",\n".join(summaries) + b"]")  # type: ignore[arg-type]
    except ValueError:
        return None
    if not isinstance(parsed, list) or len(parsed) != len(entries):
        return None
    try:  # every one an object of strings (_is_inputs), without a Python call per entry
        kinds = set(map(type, chain.from_iterable(map(dict.values, parsed))))
    except TypeError:  # not all of them objects
        return None
    return parsed if kinds <= {str} else None


def _is_inputs(inputs: Any) -> bool:
    return isinstance(inputs, dict) and all(isinstance(v, str) for v in inputs.values())


def named_digests(entries: list[Entry]) -> set[str]:
    """The digests the entries' inputs name (`file 'x' xxh3:D`, companions alike): from their
    marks, else from their records (an entry made before the mark held them)."""
    import re  # only for a clear

    shown = [entry.summary or _record_fields(entry) for entry in entries]
    return {match.decode() for match in re.findall(rb"xxh3:([0-9a-f]{32})", b"\n".join(shown))}


def _record_fields(entry: Entry) -> bytes:
    return json.dumps(read_record(entry).get("key_fields", [])).encode()


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
