"""An interface's snapshot (`index/<interface>.snapshot`): what a scan made of the interface's
folder and of its index, kept so that the next scan need not list 200,000 names and parse
100,000 lines again while neither changed.

A scan of 100,000 entries spends most of its time in Python on those two: the listing (an object
per name, their types, the sets that sort entries from locks and the rest) and the index (a
checksum, a split and four numbers per line). A snapshot holds their results in marshal's form,
which one C call makes again, with what says whether they still hold:

- the folder's inode and mtime, as the scan's lstat gave them before it listed the folder: a
  name added, removed or renamed there since moves the mtime, and the next scan lists it again.
  Only a listing that began SETTLE_NS after the folder last changed is kept: a file system's
  clock ticks coarser than the nanoseconds it shows, and a change made in the tick of the last
  one would not move the mtime;
- the index's inode, how far it was read, and a checksum of the bytes it ended with: the lines
  appended since (each hit appends one) are parsed on top; an index a clear rewrote is a new
  file, parsed whole;
- its listing holds only while every entry it names still has a line, and none of its other
  folders has gained one (an entry finished since): else the folder is listed again.

It is used only where that reasoning holds and no one else could have written it: a private
cache (a shared one's members would each need their own), a local file system (on NFS a folder's
mtime is the server's clock, and cached by the client), a regular file this user owns that no
one else may write (marshal is no format to read from anyone else), made by this very Python
(marshal's format is per version), whole (a checksum). Else, or on anything unexpected, the scan
lists and parses as before: like the index it reads, a snapshot is a hint, never the truth.
"""

from __future__ import annotations

import marshal
import os
import sys
import time
from collections.abc import Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import xxhash

from imcache.core.files import place_atomic, suppress
from imcache.core.index import Read, end_check, folder_fd, open_in_index
from imcache.core.layout import SNAPSHOT_SUFFIX

SETTLE_NS = 2 * 10**9  # how long before a listing its folder must have last changed
MIN_ENTRIES = 1000  # fewer entries are listed faster than a snapshot is written
MAGIC = b"imcache-snapshot 2 %s %d\n" % (sys.implementation.cache_tag.encode(), marshal.version)
LIMIT = 1 << 30  # a bigger file is no snapshot of ours


class Listing(NamedTuple):
    """What a scan takes from an interface folder's listing, sorted as it needs it."""

    keys: list[str]  # the key folders the index describes: the entries
    rest: list[str]  # every other name but those entries' lock files
    folders: list[str]  # of the rest, the real folders
    linked_locks: list[str]  # lock files that are links


class Kept(NamedTuple):
    folder: tuple[int, int]  # the folder's inode and mtime before it was listed
    listing: Listing
    since: tuple[Read, int]  # the index as read, and `end_check` of what it had read
    prefix: str  # the folder's path and a separator, as the rows' paths begin
    rows: list[tuple[Any, ...]]  # the fields of each entry the listing's keys name, as then


ROW_FIELDS = 8  # an `Entry`'s: interface, key, path, last use, then its index line's four
KEY_OF, LINE_OF = itemgetter(1), itemgetter(slice(4, None))


class Keeper:
    """A scan's snapshots: loaded where trusted, written where worth it (`keep`)."""

    def __init__(self, root: str, writes: bool = True) -> None:
        self.root = root
        self.writes = writes  # else it only loads
        self.started_ns = time.time_ns()  # before any lstat of the scan's folders
        self._trusted: bool | None = None

    def trusted(self) -> bool:
        if self._trusted is None:
            self._trusted = _private_and_local(self.root)
        return self._trusted

    def load(self, interface: str) -> Kept | None:
        try:
            fd = open_in_index(self.root, interface + SNAPSHOT_SUFFIX, os.O_RDONLY)
        except OSError:  # none (most caches: small ones), or not a regular file
            return None
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or info.st_mode & 0o022 or info.st_size > LIMIT:
                return None
            data = _read_all(fd, info.st_size) if self.trusted() else b""
        finally:
            os.close(fd)
        return _kept(data)

    def settled(self, folder_mtime_ns: int) -> bool:
        return folder_mtime_ns + SETTLE_NS < self.started_ns

    def keep(
        self,
        interface: str,
        folder: tuple[int, int],
        listing: Listing,
        index: Read,
        prefix: str,
        entries: Sequence[tuple[Any, ...]],
    ) -> None:
        """Write the interface's snapshot (best effort: a read-only cache keeps none), with
        `entries`, those the listing's keys name as the scan made them, their paths under
        `prefix` (rows are made again in one C loop; their index lines are the rows' tails,
        not kept twice)."""
        if not self.writes or len(listing.keys) < MIN_ENTRIES or not index.inode:
            return
        if not self.trusted():  # asked last: it reads the mount table
            return
        check = end_check(self.root, interface, index)
        if check is None:  # rewritten since it was read
            return
        others = index.lines.keys() - set(listing.keys)  # lines of entries not listed
        state = ({key: index.lines[key] for key in others}, index.uses, index.total)
        rows = list(map(tuple, entries))  # plain tuples: marshal writes no named ones
        payload = marshal.dumps(
            (folder, tuple(listing[1:]), (*state, index.inode, index.size), check, prefix, rows)
        )
        with suppress(OSError):
            _write(self.root, interface, b"%s%016x\n" % (MAGIC, _digest(payload)) + payload)


def _kept(data: bytes) -> Kept | None:
    head, newline, payload = data[len(MAGIC) :].partition(b"\n")
    if not data.startswith(MAGIC) or not newline or head != b"%016x" % _digest(payload):
        return None
    try:
        folder, listing, (others, *state), check, prefix, rows = marshal.loads(payload)
        if type(rows) is not list or type(others) is not dict or set(map(len, rows)) - {ROW_FIELDS}:
            return None
        keys = list(map(KEY_OF, rows))
        lines = dict(zip(keys, map(LINE_OF, rows), strict=True))
        lines.update(others)
        since = (Read(lines, *state), check)
        kept = Kept(tuple(folder), Listing(keys, *listing), since, prefix, rows)
    except (ValueError, TypeError, EOFError):  # a snapshot of another shape: none
        return None
    return kept if _well_formed(kept) else None


def _well_formed(kept: Kept) -> bool:
    read = kept.since[0]
    parts: tuple[object, ...] = (*kept.listing, read.uses, kept.prefix)
    kinds = (list, list, list, list, dict, str)
    return all(type(part) is kind for part, kind in zip(parts, kinds, strict=True))


def _digest(payload: bytes) -> int:
    return xxhash.xxh3_64_intdigest(payload)


def _read_all(fd: int, size: int) -> bytes:
    with open(os.dup(fd), "rb") as file:
        return file.read(size + 1)


def _write(root: str, interface: str, data: bytes) -> None:
    folder = folder_fd(root)
    try:

        def write(temporary: str) -> None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with open(os.open(temporary, flags, 0o644, dir_fd=folder), "wb") as file:
                file.write(data)

        place_atomic(interface + SNAPSHOT_SUFFIX, write, dir_fd=folder)
    finally:
        os.close(folder)


def _private_and_local(root: str) -> bool:
    """A cache only this user writes, on a file system whose clock is this machine's."""
    from imcache.core.lock_census import LOCAL_FILE_SYSTEMS, file_system_of, read_mountinfo

    try:
        if os.stat(root).st_mode & 0o022:  # shared with a group (or open to all)
            return False
        return file_system_of(os.path.realpath(root), read_mountinfo()) in LOCAL_FILE_SYSTEMS
    except (OSError, ValueError):
        return False
