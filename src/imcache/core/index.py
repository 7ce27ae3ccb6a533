"""An interface's index (`index/<interface>.log`): what `ls`, `stats` and `clear` need of each
entry, so that they read one file per interface instead of opening 100,000 entries.

Two kinds of line, each appended with one O_APPEND write: an entry's (`CHECK KEY MARK CREATED
SIZE INPUTS`), once it is in place; a use's (`CHECK KEY USED`), at each hit, beside the used
mark's mtime that it mirrors. CHECK is a checksum of the rest: appends from two hosts of a shared
file system may tear a line, and a line that does not check is no line. An entry's latest line
says what it is, the use lines after it when it was last used.

The index is a hint, never the truth: an entry without a line (made before the index, or whose
line was lost) is read from its mark, and what `clear` removes it first looks at again under the
entry's lock, in the mark itself. `clear` rewrites an index when it holds more lines than the
entries left need, carrying on what runs appended meanwhile.
"""

from __future__ import annotations

import os

import xxhash  # a hit's: its checksums are these

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
    from collections.abc import Callable, Iterable

    # key -> (moment of publishing, size, the inputs line, the mark's inode): an `Entry`'s last
    # fields, in its order
    Lines = dict[str, tuple[int, int, bytes, int]]

HEX = HEX_DIGITS.encode()


def index_path(root: str, interface: str) -> str:
    return os.path.join(root, INDEX_FOLDER, interface + INDEX_SUFFIX)


def _checked(rest: bytes) -> bytes:
    return b"%08x %s\n" % (xxhash.xxh32_intdigest(rest), rest)


def entry_line(key: str, mark: int, created_ns: int, size: int, summary: bytes) -> bytes:
    return _checked(b"%s %d %d %d %s" % (key.encode(), mark, created_ns, size, summary))


def use_line(key: str, used_ns: int) -> bytes:
    return _checked(b"%s %d" % (key.encode(), used_ns))


class Read:
    """An index as a scan read it: its entries' lines that check and their last uses, how many
    lines it had in all (what a rewrite would drop), and which file it was up to where (what a
    rewrite carries on)."""

    __slots__ = ("inode", "lines", "size", "total", "uses")

    def __init__(self, lines: Lines, uses: dict[str, int], total: int, inode: int, size: int):
        self.lines, self.uses, self.total, self.inode, self.size = lines, uses, total, inode, size


def read_index(path: str) -> Read:
    try:
        with open(path, "rb") as file:
            inode, data = os.fstat(file.fileno()).st_ino, file.read()
    except OSError:  # none yet, or not ours to read: every entry is read from its mark
        return Read({}, {}, 0, 0, 0)
    raw = data.split(b"\n")
    raw.pop()  # after the last newline is no line (none, or one torn)
    lines, uses = _parse(raw)
    return Read(lines, uses, len(raw), inode, len(data))


def _parse(raw: list[bytes]) -> tuple[Lines, dict[str, int]]:
    """The lines that check: an entry's latest line, and the last use line after it."""
    lines: Lines = {}
    uses: dict[str, int] = {}
    check = xxhash.xxh32_intdigest
    for line in raw:
        rest = line[9:]
        try:
            if check(rest) != int(line[:8], 16) or line[8:9] != b" ":
                continue
            fields = rest.split(b" ", 4)
            key = fields[0]
            if len(key) != 32 or key.translate(None, HEX):  # only a key has a line
                continue
            name = key.decode()
            if len(fields) == 2:
                if name in lines:  # else a use of an entry read from its mark
                    uses[name] = int(fields[1])
                continue
            _, mark, created, size, summary = fields
            lines[name] = (int(created), int(size), summary, int(mark))
            uses.pop(name, None)  # earlier uses were of an earlier entry at this key
        except ValueError:  # torn, or not ours
            continue
    return lines, uses


def note_entry(entry: str, *, shared: Callable[[], bool]) -> None:
    """Append the line of an entry just placed (best effort: without it, scans read its mark)."""
    try:
        fd = os.open(os.path.join(entry, USED_MARK), os.O_RDONLY)
        try:
            mark, text = os.fstat(fd).st_ino, os.read(fd, MARK_READ)
        finally:
            os.close(fd)
    except OSError:
        return
    size, created, summary = mark_fields(text) or (0, 0, None)
    if summary is None:  # an older mark: its entry is read as before
        return
    folder, key = os.path.split(entry)
    root, interface = os.path.split(folder)
    _append(index_path(root, interface), entry_line(key, mark, created, size, summary), shared)


def note_use(entry: str, used_ns: int, *, shared: Callable[[], bool]) -> None:
    """Append a use of the entry (a hit's: one open, write and close; best effort)."""
    folder, key = os.path.split(entry)
    root, interface = os.path.split(folder)
    _append(index_path(root, interface), use_line(key, used_ns), shared)


def _append(path: str, line: bytes, shared: Callable[[], bool]) -> None:
    """`shared()` is asked only where it matters (a hit's appends need no stat of the root)."""
    with suppress(OSError):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, SHARED_LOCK_MODE)
        except FileNotFoundError:  # the first entry of the cache: its index folder first
            _make_folder(os.path.dirname(path), shared())
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, SHARED_LOCK_MODE)
        try:
            os.write(fd, line)
            if os.fstat(fd).st_mode & 0o060 != 0o060 and shared():
                os.fchmod(fd, SHARED_LOCK_MODE)  # every member of the group appends here
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
    published or used meanwhile, newer than any line kept. An index replaced since is left as
    it is (another clear rewrote it)."""
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
