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

import errno
import os
import stat
import time

import xxhash  # a hit's: its checksums are these

from imcache.core.entry import MARK_READ, mark_fields
from imcache.core.files import place_atomic, suppress
from imcache.core.layout import (
    HEX_DIGITS,
    INDEX_FOLDER,
    INDEX_SUFFIX,
    SHARED_LOCK_MODE,
    SHARED_ROOT_MODE,
    SNAPSHOT_SUFFIX,
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


def gone_line(key: str) -> bytes:
    """The entry at `key` was removed: its lines before this one describe nothing (an entry
    made there again without a line, by an imcache older than the index, is read from its mark)."""
    return _checked(key.encode())


class Read:
    """An index as a scan read it: its entries' lines that check and their last uses, how many
    lines it had in all (what a rewrite would drop), and which file it was up to where (what a
    rewrite carries on: the end of its last whole line)."""

    __slots__ = ("changed", "inode", "lines", "size", "total", "uses")

    def __init__(
        self,
        lines: Lines,
        uses: dict[str, int],
        total: int,
        inode: int,
        size: int,
        changed: set[str] | None = None,
    ):
        self.lines, self.uses, self.total, self.inode, self.size = lines, uses, total, inode, size
        self.changed = changed  # read on top of an earlier reading: the keys its lines were of


NOTHING = Read({}, {}, 0, 0, 0)
MOMENT_LIMIT = 1 << 63  # a moment or a size past this is no line of ours (a forged one)


def read_index(root: str, interface: str, since: tuple[Read, int] | None = None) -> Read:
    """The index as it is now. `since`: an earlier reading of it (taken over: its dicts are
    changed) and `end_check` of what it had read: if the index is still that file, only the
    lines appended since are parsed, on top of it (a snapshot's way, core/snapshot.py)."""
    try:
        fd = _open_index(root, interface, os.O_RDONLY)
    except OSError:  # none yet, not a regular file, or not ours to read: marks are read instead
        return NOTHING
    with open(fd, "rb") as file:
        inode = os.fstat(fd).st_ino
        base = _still(fd, inode, since)
        if base is not None:
            file.seek(base.size)
        data = file.read()
    raw = data.split(b"\n")
    raw.pop()  # after the last newline is no line (none, or one being appended)
    size = data.rfind(b"\n") + 1
    if base is None:
        return Read(*_parse(raw, {}, {}), len(raw), inode, size)
    changed: set[str] = set()
    lines, uses = _parse(raw, base.lines, base.uses, changed)
    return Read(lines, uses, base.total + len(raw), inode, base.size + size, changed)


def _still(fd: int, inode: int, since: tuple[Read, int] | None) -> Read | None:
    """The earlier reading, if the open index is the file it read, grown only by appends."""
    if since is None or since[0].inode != inode or os.fstat(fd).st_size < since[0].size:
        return None
    return since[0] if _end_check(fd, since[0].size) == since[1] else None


END_CHECKED = 4096  # the bytes before where a reading ended that `end_check` checks


def end_check(root: str, interface: str, read: Read) -> int | None:
    """A checksum of the last bytes `read` read of the index, if it is still that file: what
    tells a later reading that they are still there (an index edited in place is read whole)."""
    try:
        fd = _open_index(root, interface, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _end_check(fd, read.size) if os.fstat(fd).st_ino == read.inode else None
    finally:
        os.close(fd)


def _end_check(fd: int, end: int) -> int:
    start = max(0, end - END_CHECKED)
    return xxhash.xxh3_64_intdigest(os.pread(fd, end - start, start))


def _parse(
    raw: list[bytes], lines: Lines, uses: dict[str, int], changed: set[str] | None = None
) -> tuple[Lines, dict[str, int]]:
    """The lines that check, on top of `lines` and `uses` (changed): an entry's latest line,
    and the last use line after it. `changed` gets the key of each line that checks."""
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
            if changed is not None:
                changed.add(name)
            if len(fields) == 1:  # removed
                lines.pop(name, None)
                uses.pop(name, None)
            elif len(fields) == 2:
                used = int(fields[1])
                if name in lines and 0 <= used < MOMENT_LIMIT:  # else a use of an entry read
                    uses[name] = used  # from its mark
            else:
                _, mark, created, size, summary = fields
                made, size_, inode = int(created), int(size), int(mark)
                if 0 <= made < MOMENT_LIMIT and 0 <= size_ < MOMENT_LIMIT and inode >= 0:
                    lines[name] = (made, size_, summary, inode)
                    uses.pop(name, None)  # earlier uses were of an earlier entry at this key
        except ValueError:  # torn, or not ours
            continue
    return lines, uses


def note_entry(entry: str, *, shared: Callable[[], bool]) -> None:
    """Append the line of an entry just placed (best effort: without it, scans read its mark)."""
    try:
        fd = os.open(os.path.join(entry, USED_MARK), os.O_RDONLY | os.O_NOFOLLOW)
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
    _append(root, interface, entry_line(key, mark, created, size, summary), shared)


def note_use(entry: str, used_ns: int, *, shared: Callable[[], bool]) -> None:
    """Append a use of the entry (a hit's: a few system calls; best effort)."""
    folder, key = os.path.split(entry)
    root, interface = os.path.split(folder)
    _append(root, interface, use_line(key, used_ns), shared)


def note_gone(root: str, interface: str, keys: Iterable[str], *, shared: bool) -> None:
    """Append that the entries at `keys` were removed (one write for all of them)."""
    lines = b"".join(map(gone_line, keys))
    if lines:
        _append(root, interface, lines, lambda: shared)


def _append(root: str, interface: str, line: bytes, shared: Callable[[], bool]) -> None:
    """`shared()` is asked only to make the index folder: whether the group appends too is the
    folder's mode (a hit looks at the root no more than before)."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    with suppress(OSError):
        try:
            folder = folder_fd(root)
        except FileNotFoundError:  # the first entry of the cache: its index folder first
            _make_folder(os.path.join(root, INDEX_FOLDER), shared())
            folder = folder_fd(root)
        try:
            fd = _open_index(root, interface, flags, folder)
            try:
                os.write(fd, line)
                if os.fstat(fd).st_mode & 0o060 != 0o060 and os.fstat(folder).st_mode & 0o020:
                    os.fchmod(fd, SHARED_LOCK_MODE)  # every member of the group appends here
            finally:
                os.close(fd)
        finally:
            os.close(folder)


def folder_fd(root: str) -> int:
    """The index folder, open: itself, not a link (in a shared cache a member could point one
    at anyone's files, which every hit of every member would then write to)."""
    return os.open(os.path.join(root, INDEX_FOLDER), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def _open_index(root: str, interface: str, flags: int, folder: int | None = None) -> int:
    """The interface's index, open, if it is a regular file of the index folder (neither a
    link nor a fifo, which would block a hit): OSError if not."""
    return open_in_index(root, interface + INDEX_SUFFIX, flags, folder)


def open_in_index(root: str, name: str, flags: int, folder: int | None = None) -> int:
    """A file of the index folder, open, if it is a regular file: OSError if not."""
    own = folder is None
    folder = folder_fd(root) if folder is None else folder
    try:
        flags |= os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(name, flags, SHARED_LOCK_MODE, dir_fd=folder)
    finally:
        if own:
            os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", name)
    return fd


def _make_folder(folder: str, shared: bool) -> None:
    with suppress(FileExistsError):
        os.mkdir(folder)
        if shared:  # as an interface folder: every member adds, each keeps their own
            os.chmod(folder, SHARED_ROOT_MODE)


LATE_APPENDS_SECONDS = 0.01  # how long a hit that opened the old index may take to write to it


def rewrite_index(
    root: str, interface: str, lines: Iterable[bytes], read: Read, *, shared: bool
) -> bool:
    """Replace an interface's index, as `read`, by `lines` (those of the entries left),
    atomically, carrying on the lines appended since it was read (of entries published or used
    meanwhile, newer than any line kept), and those appended to the old file just after the
    rename. An index replaced since `read` is left as it is (another clear rewrote it)."""
    payload = b"".join(lines)
    try:
        folder = folder_fd(root)
    except FileNotFoundError:
        folder = None
    except OSError:
        return False
    if folder is None:  # no index folder: nothing was ever appended
        return _write_new(root, interface, payload, shared) if payload else True
    try:
        return _rewrite_in(folder, interface, payload, read, shared)
    except OSError:  # another user's index in a sticky folder, a read-only cache
        return False
    finally:
        os.close(folder)


def _rewrite_in(folder: int, interface: str, payload: bytes, read: Read, shared: bool) -> bool:
    name = interface + INDEX_SUFFIX
    try:
        old = _open_index("", interface, os.O_RDONLY, folder)
    except FileNotFoundError:
        if read.inode:
            return False  # removed since: another clear's doing
        old = None
    try:
        if old is not None and read.inode and os.fstat(old).st_ino != read.inode:
            return False  # replaced since
        carried = [read.size if old is not None and read.inode else 0]
        if not payload and not _tail(old, carried, peek=True):  # nothing left: no index
            for gone in (name, interface + SNAPSHOT_SUFFIX):  # nor a snapshot of one
                with suppress(FileNotFoundError):
                    os.unlink(gone, dir_fd=folder)
            return True

        def write(temporary: str) -> None:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            with open(os.open(temporary, flags, 0o644, dir_fd=folder), "wb") as file:
                file.write(payload)
                file.write(_tail(old, carried))  # last: the rename follows at once
                if shared:
                    os.fchmod(file.fileno(), SHARED_LOCK_MODE)

        place_atomic(name, write, dir_fd=folder)
        time.sleep(LATE_APPENDS_SECONDS)
        late = _tail(old, carried)  # appended to the old file by hits that opened it before
        if late:
            _append_in(folder, interface, late)
        return True
    finally:
        if old is not None:
            os.close(old)


def _tail(old: int | None, carried: list[int], peek: bool = False) -> bytes:
    """The whole lines of the old index past `carried[0]` (then moved past them)."""
    if old is None:
        return b""
    data = os.pread(old, 1 << 30, carried[0])
    whole = data[: data.rfind(b"\n") + 1]
    if not peek:
        carried[0] += len(whole)
    return whole


def _append_in(folder: int, interface: str, lines: bytes) -> None:
    with suppress(OSError):
        fd = _open_index("", interface, os.O_WRONLY | os.O_APPEND, folder)
        try:
            os.write(fd, lines)
        finally:
            os.close(fd)


def _write_new(root: str, interface: str, payload: bytes, shared: bool) -> bool:
    """The first index of a cache that had none (a clear healing one made before the index)."""
    _make_folder(os.path.join(root, INDEX_FOLDER), shared)
    _append(root, interface, payload, lambda: shared)
    return True
