"""A dry run's lock question for many entries at once: one read of /proc/locks (`held_among`).

`held_elsewhere` (core/lock) asks the kernel per lock file: open, F_GETLK, close; for 80,000
entries that is 0.6 s or more. Linux lists every lock held on the machine in /proc/locks, most
often a handful of lines, each naming the file as `major:minor:inode`: a lock file whose inode is
not there is held by nobody, and no system call is needed to say so. That is true only where
the list is complete and its numbers are the ones a directory listing gives, so the census is
trusted only:

- on Linux;
- on a local file system (`LOCAL_FILE_SYSTEMS`, for the root and every folder of lock files): on
  NFS, CIFS, Lustre, GPFS, CephFS, 9p, FUSE ... a holder on another host never shows in this
  machine's list;
- when a self-test passes: a shared flock this process takes on each folder of lock files shows in
  the list with the folder's device (st_dev) and the inode its parent's listing gives (d_ino, the
  number the caller gives for each lock file; an overlay-like mount may list other numbers than
  the ones it locks). All the folders must be on one device.

Otherwise, or on anything unexpected (a line not understood, a file not readable), `held_among`
answers None and the caller asks `held_elsewhere` per file, as before.

The answers are held_elsewhere's. A POSIX or OFD lock of another process is held (an OFD lock
shows pid -1, a process outside our pid namespace pid 0); a flock, a lease or a delegation is not
(F_GETLK sees none of them, and a real clear's lockf takes the lock despite them); a blocked
waiter (a `->` line) holds nothing. A lock of this process's own is no conflict (F_GETLK never
reports one); a lock file this process has open is asked of held_elsewhere, which knows this
process's threads and holds (a thread's lock counts, the process's own hold does not).
"""

from __future__ import annotations

import fcntl
import os
import sys

from imcache.core.datatype import datatype
from imcache.core.lock import held_elsewhere, locks_off, open_here

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

PROC_LOCKS = "/proc/locks"
MOUNTINFO = "/proc/self/mountinfo"
# File systems whose locks are this machine's alone, so that /proc/locks lists every holder.
# Not: nfs, nfs4, cifs, smb3, lustre, gpfs, ceph, beegfs, 9p, fuse.* (holders on other hosts or
# in a daemon), overlay (it lists numbers of one layer and locks those of another).
LOCAL_FILE_SYSTEMS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "jfs", "reiserfs", "bcachefs"}
    | {"nilfs2", "zfs", "ramfs"}
)
HOLDING = frozenset({"POSIX", "OFDLCK"})  # what F_GETLK reports and a real clear's lockf meets
NOT_HOLDING = frozenset({"FLOCK", "LEASE", "DELEG"})  # F_GETLK sees none of these
_ACCESS = frozenset({"READ", "WRITE", "UNLCK"})
_WAITER = "->"  # a blocked request, printed under the lock it waits for


@datatype
class LockLine:
    """One lock /proc/locks lists: its kind, its process, and the file it is on."""

    kind: str  # POSIX, OFDLCK, FLOCK, LEASE or DELEG
    pid: int  # -1 for an OFD lock, 0 for a process outside our pid namespace
    device: tuple[int, int] | None  # (major, minor); None for a lock on no inode
    inode: int


def parse_line(line: str) -> LockLine | None:
    """A line of /proc/locks (`1: POSIX  ADVISORY  WRITE 321 fd:01:1234 0 EOF`); None for a
    blocked waiter's (`1: -> POSIX ...`); ValueError for a line this module does not know."""
    words = line.split()
    waiter = len(words) == 9 and words[1] == _WAITER
    if waiter:
        del words[1]
    if len(words) != 8 or not _is_number(words[0].removesuffix(":"), "0123456789"):
        raise ValueError(f"not a line of {PROC_LOCKS}: {line!r}")
    _, kind, _mode, access, pid, where, start, end = words
    if kind not in HOLDING | NOT_HOLDING or access not in _ACCESS:
        raise ValueError(f"a lock of a kind not known here: {line!r}")
    if not (_is_number(pid.removeprefix("-"), "0123456789") and _is_number(start, "0123456789")):
        raise ValueError(f"not a pid and an offset: {line!r}")
    if end != "EOF" and not _is_number(end, "0123456789"):
        raise ValueError(f"not an end offset: {line!r}")
    if waiter:
        return None
    if where == "<none>:0":
        return LockLine(kind, int(pid), None, 0)
    major, minor, inode = where.split(":")  # ValueError unless three parts
    hexadecimal = "0123456789abcdef"
    if not (_is_number(major, hexadecimal) and _is_number(minor, hexadecimal)):
        raise ValueError(f"not a device: {line!r}")
    if not _is_number(inode, "0123456789"):
        raise ValueError(f"not an inode: {line!r}")
    return LockLine(kind, int(pid), (int(major, 16), int(minor, 16)), int(inode))


def _is_number(word: str, digits: str) -> bool:
    """ASCII digits only: int() would take '+1', '1_0' and other scripts' digits."""
    return bool(word) and not word.strip(digits)


def parse_locks(text: str) -> list[LockLine]:
    """Every lock held, as /proc/locks lists them (blocked waiters left out)."""
    return [lock for line in text.splitlines() if (lock := parse_line(line)) is not None]


def file_system_of(path: str, mountinfo: str) -> str:
    """The type of the file system holding `path` (absolute, no links in it): the mount at its
    longest mount point prefix, the last one there (a later mount covers an earlier one)."""
    longest, kind = -1, None
    for line in mountinfo.splitlines():
        words = line.split()
        fields = words.index("-", 6)  # optional fields end with a lone "-"; ValueError if none
        point = _unescape(words[4])
        inside = point == "/" or path == point or path.startswith(point + "/")
        if inside and len(point) >= longest:
            longest, kind = len(point), words[fields + 1]
    if kind is None:
        raise ValueError(f"no mount holds {path!r}")
    return kind


def _unescape(word: str) -> str:
    """mountinfo writes a space, tab, newline and backslash in a mount point as `\\ooo`."""
    if "\\" not in word:
        return word
    import re  # a mount point with one of those only

    return re.sub(r"\\([0-7]{3})", lambda found: chr(int(found[1], 8)), word)


def read_mountinfo() -> str:
    return _read(MOUNTINFO)


def read_proc_locks() -> str:
    return _read(PROC_LOCKS)


def _read(path: str) -> str:
    with open(path, "rb") as file:
        return os.fsdecode(file.read())  # mount points are bytes, as paths are


def held_among(root: str, locks: dict[str, int]) -> set[str] | None:
    """The lock files of `locks` (path -> inode as a directory listing gave it, `d_ino`) that
    another process holds a lock on, as `held_elsewhere` would answer for each; None when the
    census cannot be trusted here (then ask `held_elsewhere` per path).

    The caller lists regular files only: a lock file that is a link locks its target, whose
    inode is not the one listed (held_elsewhere follows the link). One answer differs: a lock
    file this process may not open (its mode changed by hand) is held for held_elsewhere (an
    entry we cannot lock is not ours to promise); a census sees locks, not modes."""
    if not locks:
        return set() if locks_off() or sys.platform == "linux" else None
    folders = {path.rpartition(os.sep)[0] for path in locks}  # 5 times faster than dirname
    if "" in folders:  # a lock file in "/" or in the working folder: rare, so spelt out
        folders = {os.path.dirname(path) or os.curdir for path in locks}
    held = held_in(root, folders, lambda: locks)
    return None if held is None else {path for path in held if path in locks}


def held_in(
    root: str, folders: set[str], list_locks: Callable[[], dict[str, int]]
) -> set[str] | None:
    """`held_among` for the lock files in `folders`, listed (`list_locks`: path -> d_ino, as
    for held_among) only if another process holds a lock on their file system at all: most
    often none does, and then no lock file is looked at."""
    if locks_off():
        return set()
    if sys.platform != "linux":
        return None
    try:
        listed = _trusted_in(root, folders) if folders else set()
    except (OSError, ValueError):
        return None
    if listed is None:
        return None
    locks = list_locks() if listed else {}
    held = {path for path, inode in locks.items() if inode in listed}
    here = (path for path in open_here() if (os.path.dirname(path) or os.curdir) in folders)
    mine = (path for path in here if path not in held)
    held.update(path for path in mine if held_elsewhere(path))
    return held


def _trusted_in(root: str, folders: set[str]) -> set[int] | None:
    """The inodes on which other processes hold a POSIX or OFD lock, in the one file system of
    the folders of the lock files; None unless that is safe to say. A line of this process's is no
    conflict for F_GETLK (POSIX locks are the process's); the locks imcache takes have a slot
    (`open_here`)."""
    mountinfo = read_mountinfo()
    for folder in {root, *folders}:
        if file_system_of(os.path.realpath(folder), mountinfo) not in LOCAL_FILE_SYSTEMS:
            return None
    tested = _self_test(folders)
    if tested is None:
        return None
    device, lines = tested
    me = os.getpid()
    return {
        line.inode
        for line in lines
        if line.kind in HOLDING and line.device == device and line.pid != me
    }


def _self_test(folders: set[str]) -> tuple[tuple[int, int], list[LockLine]] | None:
    """/proc/locks read while this process holds a shared flock on each folder, and the one
    device the folders are on, if each flock shows there with the folder's st_dev and d_ino."""
    expected: set[tuple[tuple[int, int], int]] = set()
    taken: list[int] = []
    try:
        for folder in folders:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            taken.append(fd)
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # no lock of imcache's: it takes none
            device = os.fstat(fd).st_dev
            expected.add(((os.major(device), os.minor(device)), _listed_inode(folder)))
        lines = parse_locks(read_proc_locks())
    finally:
        for fd in taken:
            os.close(fd)  # lets go of the flock (a POSIX lock on the folder we never take)
    me = os.getpid()
    shown = {(line.device, line.inode) for line in lines if line.kind == "FLOCK" and line.pid == me}
    devices = {device for device, _ in expected}
    if not expected <= shown or len(devices) != 1:
        return None
    return devices.pop(), lines


def _listed_inode(folder: str) -> int:
    """The inode the folder's parent lists for it (d_ino): the number the caller's lock files
    come with. A folder that is a link lists the link's: the self-test then fails, as it should."""
    parent, name = os.path.split(os.path.abspath(folder))
    with os.scandir(parent) as listing:
        for entry in listing:
            if entry.name == name:
                return entry.inode()
    raise ValueError(f"{folder!r} is not listed in {parent!r}")
