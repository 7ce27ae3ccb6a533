"""What the cache holds, read from the disk: its entries, their last use and size, and the rest.

A scan sorts every name under the root: complete entries, leftovers of failed, interrupted or
half-deleted attempts, lock files whose entry is gone, and strays (not imcache's: reported, never
removed). `ls`, `show`, `stats`, `clear`, `session status` and `verify` all start from one.
"""

from __future__ import annotations

import bisect
import builtins
import contextlib
import gc
import json
import os
import stat
from itertools import compress, repeat
from operator import attrgetter, itemgetter, methodcaller
from typing import TYPE_CHECKING, Any, NamedTuple

from imcache.core.datatype import datatype, field
from imcache.core.entry import MARK_READ, mark_fields, tree_bytes
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
from imcache.core.snapshot import MIN_ENTRIES, Keeper, Kept, Listing
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


def scan(store: Store, *, keep: bool = True) -> Scan:
    """What the cache holds now. `keep`: write the snapshots worth writing (not a scan that is
    about to change the folders: a real clear's, whose snapshots would be out of date at once)."""
    # No cyclic garbage collection while 100,000 entries are made: each pass walks every tuple
    # made so far, and none of them is garbage (a quarter of a large scan's time went to it).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _scan(store, keep)
    finally:
        if collecting:
            gc.enable()


def _scan(store: Store, keep: bool) -> Scan:
    store.refuse_link()
    found = Scan()
    keeper = Keeper(store.root, keep)  # the moment before any folder's lstat: for snapshots
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
            _scan_interface(store.root, name, found, (info.st_ino, info.st_mtime_ns), keeper)
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


def _scan_interface(
    root: str, interface: str, found: Scan, state: tuple[int, int], keeper: Keeper
) -> None:
    """An interface folder: its entries as its index describes them (no system call for each),
    then whatever else its listing holds; both as its snapshot kept them, while they hold."""
    folder = os.path.join(root, interface)
    kept = keeper.load(interface)
    since = None if kept is None else kept.since
    if kept is not None and kept.folder == state:  # no name added or removed since it was kept
        index = read_index(root, interface, since)
        listing = kept.listing if _holds(kept.listing, index) else _list(folder, index)
    else:  # the listing first, then the index: an entry published between has no folder listed
        listed = _listed(folder)
        index = read_index(root, interface, since)
        listing = _sorted(listed, index)
    found.indexes[interface] = index
    prefix = folder + os.sep  # not os.path.join: a scan joins 100,000 names
    first = len(found.entries)
    # Its rows serve under this very path, on an index read on top of it (else no knowing what
    # changed since: the entries are made from the index).
    if (
        kept is not None
        and listing is kept.listing
        and kept.prefix == prefix
        and index.changed is not None
    ):
        found.entries += _kept_entries(kept, index, interface)
    else:
        found.entries += _entries(listing.keys, index, interface, prefix)
    if _worth_keeping(keeper, kept, listing, index, state[1]):
        keeper.keep(interface, state, listing, index, prefix, found.entries[first:])
    found.linked_locks.update(map(prefix.__add__, listing.linked_locks))
    found.unindexed[interface] = 0
    rest = listing.rest
    if rest and _scan_rest(prefix, interface, rest, set(listing.folders), set(), found):
        found.entries[first:] = sorted(found.entries[first:], key=itemgetter(1))  # by key


def _entries(keys: list[str], index: Read, interface: str, prefix: str) -> list[Entry]:
    """The entries of `keys` as the index describes them."""
    uses, new = index.uses, tuple.__new__
    return [  # Entry(...) in C: a tuple made directly, not through a Python __new__
        new(Entry, (interface, key, prefix + key, uses.get(key, line[0]), *line))
        for key, line in zip(keys, map(index.lines.__getitem__, keys), strict=True)
    ]


def _kept_entries(kept: Kept, index: Read, interface: str) -> list[Entry]:
    """The entries a snapshot kept, in one C loop (a third of the cost of making them from
    the index's lines), but those the index's lines read since were of: made from those."""
    entries = list(map(tuple.__new__, repeat(Entry), kept.rows))
    keys = kept.listing.keys
    for key in index.changed or ():
        at = bisect.bisect_left(keys, key)
        if at < len(keys) and keys[at] == key:
            entries[at] = _entries([key], index, interface, kept.prefix)[0]
    return entries


def _worth_keeping(
    keeper: Keeper, kept: Kept | None, listing: Listing, index: Read, mtime_ns: int
) -> bool:
    """A listing made now, of a folder settled; or one kept, with many hits parsed since."""
    if kept is None or listing is not kept.listing:
        return keeper.settled(mtime_ns)
    return _parsed(index, kept) > max(MIN_ENTRIES, len(listing.keys) // 16)


def _holds(listing: Listing, index: Read) -> bool:
    """Whether a listing kept still sorts the folder's names as the index now says: every
    entry it names still has a line, and no other folder of it has gained one."""
    has = index.lines.__contains__
    return all(map(has, listing.keys)) and not any(map(has, listing.folders))


def _parsed(index: Read, kept: Kept) -> int:
    """How many lines this scan parsed of the index: those since the snapshot, or all."""
    base = kept.since[0]
    return index.total - base.total if index.lines is base.lines else index.total


def _listed(folder: str) -> tuple[list[str], set[str], list[str]]:
    """The folder's names, those of its real folders, and those that are links."""
    with os.scandir(folder) as listing:  # the listing's types, no stat: a link is no entry
        listed = list(listing)
    names = list(map(NAME, listed))  # map and compress: C loops over 200,000 names
    folders = set(compress(names, map(IS_FOLDER, listed)))
    return names, folders, list(compress(names, map(IS_LINK, listed)))


def _sorted(listed: tuple[list[str], set[str], list[str]], index: Read) -> Listing:
    names, folders, links = listed
    keys = sorted(folders.intersection(index.lines))
    rest = sorted(set(names).difference(keys, [key + LOCK_SUFFIX for key in keys]))
    linked_locks = [name for name in links if name.endswith(LOCK_SUFFIX)]
    return Listing(keys, rest, sorted(folders.intersection(rest)), linked_locks)


def _list(folder: str, index: Read) -> Listing:
    return _sorted(_listed(folder), index)


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
