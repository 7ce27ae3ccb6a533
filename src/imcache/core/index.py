"""An interface folder's index: a line per entry published, so that `ls`, `stats` and `clear`
learn an entry's size, moment of publishing and inputs without opening it.

A line is appended (one O_APPEND write) once an entry is in place, and `clear` rewrites the
index when it holds more lines of removed entries than of entries left. The index is a hint,
never the truth: a line is believed only for the very mark it was written from (the mark's
inode is in the line, and a scan stats each mark anyway for its last use) and only whole (a
checksum: appends from two hosts of a shared file system may tear a line). An entry without a
line that checks is read as before, from its mark; nothing a hit does reads the index.
"""

from __future__ import annotations

import os
import zlib
from typing import NamedTuple

from imcache.core.entry import MARK_READ, mark_fields
from imcache.core.files import place_atomic, suppress
from imcache.core.layout import (
    HEX_DIGITS,
    INDEX_FOLDER,
    INDEX_SUFFIX,
    SHARED_LOCK_MODE,
    SHARED_ROOT_MODE,
    USED_MARK,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

HEX = HEX_DIGITS.encode()

# key -> (moment of publishing, size, the inputs line, the mark's inode): an `Entry`'s last fields
Lines = dict[str, tuple[int, int, bytes, int]]


def index_path(root: str, interface: str) -> str:
    return os.path.join(root, INDEX_FOLDER, interface + INDEX_SUFFIX)


def line_of(key: str, inode: int, created_ns: int, size: int, summary: bytes) -> bytes:
    """`CHECK KEY INODE CREATED SIZE INPUTS`: CHECK is the CRC-32 of the rest, in hex."""
    rest = b"%s %d %d %d %s" % (key.encode(), inode, created_ns, size, summary)
    return b"%08x %s\n" % (zlib.crc32(rest), rest)


class Read(NamedTuple):
    """What a scan read of an index: its lines that check, how many lines it had in all (what
    a rewrite would drop), and which file it was up to where (what a rewrite carries on)."""

    lines: Lines
    total: int
    inode: int
    size: int


NOTHING = Read({}, 0, 0, 0)


def read_index(path: str) -> Read:
    """An interface's index as it is (a later line for a key wins: the entry was replaced)."""
    try:
        with open(path, "rb") as file:
            inode, data = os.fstat(file.fileno()).st_ino, file.read()
    except OSError:  # none yet, or not ours to read: every entry is read from its mark
        return NOTHING
    lines: Lines = {}
    crc32 = zlib.crc32
    count = 0
    for line in data.split(b"\n"):
        count += 1
        rest = line[9:]
        try:
            if crc32(rest) != int(line[:8], 16) or line[8:9] != b" ":
                continue
            key, mark, created, size, summary = rest.split(b" ", 4)
            if len(key) != 32 or key.strip(HEX):  # only a key has a line
                continue
            lines[key.decode()] = (int(created), int(size), summary, int(mark))
        except ValueError:  # torn, or not ours
            continue
    return Read(lines, count - 1, inode, len(data))  # after the last newline is no line


def note_entry(entry: str, *, shared: bool) -> None:
    """Append the line of an entry just placed (best effort: without it, scans read its mark)."""
    try:
        fd = os.open(os.path.join(entry, USED_MARK), os.O_RDONLY)
        try:
            inode, text = os.fstat(fd).st_ino, os.read(fd, MARK_READ)
        finally:
            os.close(fd)
    except OSError:
        return
    size, created, summary = mark_fields(text) or (0, 0, None)
    if summary is None:  # an older mark: its entry is read as before
        return
    folder, key = os.path.split(entry)
    root, interface = os.path.split(folder)
    _append(index_path(root, interface), line_of(key, inode, created, size, summary), shared)


def _append(path: str, line: bytes, shared: bool) -> None:
    with suppress(OSError):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, SHARED_LOCK_MODE)
        except FileNotFoundError:  # the first entry of the cache: its index folder first
            _make_folder(os.path.dirname(path), shared)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, SHARED_LOCK_MODE)
        try:
            os.write(fd, line)
            if shared and os.fstat(fd).st_mode & 0o060 != 0o060:
                os.fchmod(fd, SHARED_LOCK_MODE)  # every member of the group publishes here
        finally:
            os.close(fd)


def _make_folder(folder: str, shared: bool) -> None:
    with suppress(FileExistsError):
        os.mkdir(folder)
        if shared:  # as an interface folder: every member adds, each keeps their own
            os.chmod(folder, SHARED_ROOT_MODE)


def rewrite_index(path: str, lines: Iterable[bytes], read: Read, *, shared: bool) -> bool:
    """Replace an interface's index, as `read`, by `lines` (those of the entries left),
    atomically, carrying on the lines appended since it was read: those are of entries
    published meanwhile, newer than any line kept. An index replaced since is left as it is
    (another clear rewrote it)."""
    payload = b"".join(lines)

    def write(temporary: str) -> None:
        with open(temporary, "wb") as file:
            file.write(payload)
            file.write(_appended(path, read))  # last: the rename follows at once

    try:
        if not payload and not _appended(path, read):  # nothing left: no index
            with suppress(FileNotFoundError):
                os.unlink(path)
            return True
        _make_folder(os.path.dirname(path), shared)
        place_atomic(path, write)
        if shared:
            os.chmod(path, SHARED_LOCK_MODE)
    except (OSError, _Replaced):  # another user's index in a sticky folder, a read-only cache
        return False
    return True


class _Replaced(Exception):
    """The index is no longer the file a scan read."""


def _appended(path: str, read: Read) -> bytes:
    """The whole lines appended to the index since `read`."""
    try:
        with open(path, "rb") as file:
            if read.inode and os.fstat(file.fileno()).st_ino != read.inode:
                raise _Replaced
            file.seek(read.size)
            tail = file.read()
    except FileNotFoundError:
        if read.inode:
            raise _Replaced from None
        return b""
    return tail[: tail.rfind(b"\n") + 1]
