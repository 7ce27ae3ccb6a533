"""An entry's lock: `EntryLock`, a POSIX record lock on `<key>.lock`, and the holds kept until exit.

A run takes it exclusively to make an entry, `clear` and `verify --fix` to remove one; a hit and a
finished run keep it shared (`hold_until_exit`), so that a concurrent `clear` never removes an entry
whose paths this process is handing out. Where the lock file lives is the store's (`lock_path`).

Locks only spare duplicate work: a run publishes its entry by renaming its own folder onto the
key, first one wins (`Store.place_entry`), so an entry is right even where the locks are not shared
between hosts. They are POSIX record locks (fcntl's F_SETLK, as `lockf` takes them), not flock:
those are what NFSv4, Lustre, GPFS and CephFS share between hosts (docs/shared.md).

Two properties of POSIX locks shape this module: they belong to the process, not to a descriptor
(two locks one process takes on one file never exclude each other), and closing ANY descriptor of
the file drops all the process's locks on it. So a process opens each lock file once (`_SLOTS`),
threads of one process exclude each other here, in that table, before the kernel is asked, and the
descriptor is closed only once nothing in the process holds the lock.
"""

from __future__ import annotations

import _thread  # a lock without importing threading on the hit path
import errno
import fcntl
import os

from imcache.core.files import suppress
from imcache.core.layout import key_of_lock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# Test-only: "1" switches locking off, to show that entries stay right without it (a real
# deployment on a file system whose locks are not shared between hosts is in that situation).
NO_LOCKS = "IMCACHE_TEST_NO_LOCKS"
_BUSY = (errno.EAGAIN, errno.EACCES)  # what F_SETLK says when another process holds the lock
# A mount without locks (Lustre without -o flock, NFS with nolock and no lockd): going on
# unlocked is correct (publishing is first-one-wins), only duplicate work is possible.
_NO_LOCKS_HERE = (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP)
_POLL_SECONDS = 0.005  # a thread waiting for another thread of this process


class _Slot:
    """This process's one descriptor of a lock file, and who in the process holds the lock."""

    __slots__ = ("busy", "exclusive", "fd", "path", "shared", "writable")

    def __init__(self, path: str, fd: int, writable: bool) -> None:
        self.path = path
        self.fd = fd
        self.writable = writable  # a read-only descriptor can take only a shared lock
        self.shared = 0  # shared holders in this process (locks and holds)
        self.exclusive = False
        self.busy = False  # a thread is asking the kernel for the first lock: others wait


_GUARD = _thread.allocate_lock()
_SLOTS: dict[str, _Slot] = {}
# Locks of hits and finished runs, held until the process exits (the kernel then drops them), so
# that a concurrent `clear` never removes an entry whose paths this process is handing out.
_HELD: dict[str, _Slot] = {}


def _after_fork_in_child() -> None:
    """A forked child holds none of its parent's POSIX locks: it starts with an empty table
    (closing its copies of the descriptors drops nothing of the parent's)."""
    global _GUARD
    _GUARD = _thread.allocate_lock()  # another thread may have held it at the fork
    for slot in _SLOTS.values():
        with suppress(OSError):
            os.close(slot.fd)
    _SLOTS.clear()
    _HELD.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _drop_held(path: str) -> None:
    with _GUARD:
        slot = _HELD.pop(path, None)
    if slot is not None:
        _let_go(slot, exclusive=False)


def locks_off() -> bool:
    return os.environ.get(NO_LOCKS) == "1"


class EntryLock:
    """A lock on `<key>.lock`: exclusive to run or remove an entry, shared to use it.

    The kernel drops the lock when its process dies, so a `kill -9` never leaves a stale lock.
    After locking we check that the path still names the file we locked: `clear` unlinks the lock
    file of an entry it removes, and a lock on an unlinked file would protect nothing.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._slot: _Slot | None = None
        self._exclusive = False
        self._off = False  # taken while locking was switched off (test-only)
        # Asked exclusive, held shared (a lock file we may only read): enough to run a key
        # (duplicate work at worst), not to remove an entry others may be using.
        self.only_shared = False

    def acquire(self, exclusive: bool, on_wait: Callable[[], None] | None = None) -> bool:
        """Block until locked (calling `on_wait` once if we must wait); False if not lockable."""
        return self._take(exclusive, on_wait, blocking=True)

    def try_exclusive(self) -> bool:
        """Lock at once or not at all: an entry someone uses or runs is left alone."""
        return self._take(True, None, blocking=False)

    def hold_until_exit(self) -> None:
        """Keep a shared lock for the rest of the process (converting an exclusive one)."""
        slot, self._slot = self._slot, None
        if slot is None:
            return
        if self._exclusive:
            if slot.writable:
                fcntl.lockf(slot.fd, fcntl.LOCK_SH)  # a conversion: it never waits
            with _GUARD:
                slot.exclusive = False
                slot.shared += 1
        _drop_held(self.path)
        with _GUARD:
            _HELD[self.path] = slot

    def release(self, unlink: bool = False) -> None:
        if self._off:
            self._off = False
            return
        slot, self._slot = self._slot, None
        if slot is None:
            return
        if unlink:
            with suppress(FileNotFoundError):
                os.unlink(self.path)
        _let_go(slot, self._exclusive)

    def _take(self, exclusive: bool, on_wait: Callable[[], None] | None, blocking: bool) -> bool:
        if locks_off():
            self._off = True
            return True
        said = False
        while True:
            _drop_held(self.path)  # our own earlier hold must not block us (several runs)
            slot, first = _reserve(self.path, exclusive)
            if slot is None:
                return False
            if first is None:  # another thread of this process has it
                if not blocking:
                    return False
                if on_wait is not None and not said:
                    on_wait()
                    said = True
                _sleep()
                continue
            if first and not _kernel_lock(slot, exclusive, blocking, None if said else on_wait):
                _unreserve(slot)
                return False
            if first and not _still_ours(slot):
                _unreserve(slot, stale=True)
                continue
            self._slot, self._exclusive = slot, exclusive
            self.only_shared = exclusive and not slot.writable
            with _GUARD:
                slot.busy = False
                if exclusive:
                    slot.exclusive = True
                else:
                    slot.shared += 1
            return True


def _reserve(path: str, exclusive: bool) -> tuple[_Slot | None, bool | None]:
    """The path's slot and whether we are its first holder (then it is ours to lock in the
    kernel, marked busy); (slot, None) while another thread holds or takes it; (None, None) if
    the file cannot be opened."""
    with _GUARD:
        slot = _SLOTS.get(path)
        if slot is None:
            opened = _open(path)
            if opened is None:
                return None, None
            slot = _SLOTS[path] = _Slot(path, *opened)
        if slot.busy or slot.exclusive or (exclusive and slot.shared):
            return slot, None
        if slot.shared:  # the kernel's shared lock is already this process's
            slot.busy = True  # released at once by the caller, with the count raised
            return slot, False
        slot.busy = True
        return slot, True


def _unreserve(slot: _Slot, stale: bool = False) -> None:
    """A first lock not taken (or taken on a file that was replaced): forget the slot if unused."""
    with _GUARD:
        slot.busy = False
        if stale or (not slot.shared and not slot.exclusive):
            _forget(slot)


def _let_go(slot: _Slot, exclusive: bool) -> None:
    with _GUARD:
        if exclusive:
            slot.exclusive = False
        else:
            slot.shared -= 1
        if not slot.shared and not slot.exclusive and not slot.busy:
            _forget(slot)


def _forget(slot: _Slot) -> None:
    """Close the slot's descriptor (which drops the kernel's lock). Under `_GUARD`."""
    if _SLOTS.get(slot.path) is slot:
        del _SLOTS[slot.path]
    with suppress(OSError):
        os.close(slot.fd)


def _kernel_lock(
    slot: _Slot, exclusive: bool, blocking: bool, on_wait: Callable[[], None] | None
) -> bool:
    # A lock file we may not write takes a shared lock only: it still keeps `clear` away, and a
    # second run of the key is only duplicate work (publishing is first-one-wins). But a shared
    # lock cannot say that nobody else uses the entry: an entry is removed only under a real
    # exclusive lock (`try_exclusive`), else it counts as in use.
    if exclusive and not slot.writable and not blocking:
        return False
    mode = fcntl.LOCK_EX if exclusive and slot.writable else fcntl.LOCK_SH
    try:
        fcntl.lockf(slot.fd, mode | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in _NO_LOCKS_HERE:
            return True
        if exc.errno not in _BUSY:
            return False
    if not blocking:
        return False
    if on_wait is not None:
        on_wait()
    try:
        fcntl.lockf(slot.fd, mode)
    except OSError as exc:  # EDEADLK: not lockable; a mount without locks: unlocked
        return exc.errno in _NO_LOCKS_HERE
    return True


def _open(path: str) -> tuple[int, bool] | None:
    """The lock file's descriptor and whether it is writable, or None if we can neither make
    nor open it."""
    try:
        return os.open(path, os.O_RDWR), True
    except FileNotFoundError:
        return _create(path)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
            return None
    # A read-only cache, or another user's lock file in a root `init --shared` has not opened.
    with suppress(OSError):
        return os.open(path, os.O_RDONLY), False
    return None


def _create(path: str) -> tuple[int, bool] | None:
    """A new lock file: in a shared root (its folder group-writable) the group may write it,
    as taking an exclusive POSIX lock needs; else others may read it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return None
    with suppress(OSError):
        mode = 0o664 if os.stat(os.path.dirname(path)).st_mode & 0o020 else 0o644
        if os.fstat(fd).st_mode & 0o777 != mode:
            os.fchmod(fd, mode)  # made under a strict umask
    return fd, True


def _still_ours(slot: _Slot) -> bool:
    try:
        return os.stat(slot.path).st_ino == os.fstat(slot.fd).st_ino
    except FileNotFoundError:
        return False


def _sleep() -> None:
    import time  # a thread waiting for another thread of this process only

    time.sleep(_POLL_SECONDS)


def held_elsewhere(path: str) -> bool:
    """Whether another process holds the lock at `path` now: what a dry run asks of each entry
    it would remove. A question to the kernel (F_GETLK), not a lock taken: no lock file made, no
    slot, and the real clear locks before it removes anything. This process's own hold does not
    count (a real clear lets it go, as `EntryLock._take` does); another thread's does."""
    if locks_off():
        return False
    import sys

    if sys.platform != "linux":  # F_GETLK's `struct flock` is laid out per platform
        lock = EntryLock(path)
        if not lock.try_exclusive():
            return True
        lock.release()
        return False
    with _GUARD:  # no thread of ours opens the file meanwhile: closing our descriptor drops none
        slot = _SLOTS.get(path)
        if slot is not None:
            ours = _HELD.get(path) is slot and slot.shared == 1
            return not (ours and not slot.exclusive and not slot.busy) or _conflict(slot.fd)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return False  # no lock file: nobody holds it
        except OSError:
            return True  # as `try_exclusive`: an entry we cannot lock is not ours to promise
        try:
            return _conflict(fd)
        finally:
            os.close(fd)


def open_here() -> list[str]:
    """The lock files this process has open: held, being taken or waited for by one of its
    threads (what `held_elsewhere` answers for from its table, and a lock census cannot)."""
    with _GUARD:
        return list(_SLOTS)


def _conflict(fd: int) -> bool:
    """Whether a process other than this one holds a lock on the whole file (F_GETLK)."""
    import struct  # a dry run's only

    query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)  # Linux's struct flock
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
    except OSError as exc:
        return exc.errno not in _NO_LOCKS_HERE  # a mount without locks: nobody holds any
    held: int = struct.unpack_from("h", answer)[0]
    return held != fcntl.F_UNLCK


def drop_orphan_lock(path: str) -> None:
    """Remove the lock file of an entry that is gone, under its lock (a run holding it, or one
    whose entry is back, keeps it)."""
    lock = EntryLock(path)
    if lock.try_exclusive():
        key_dir = os.path.join(os.path.dirname(path), key_of_lock(os.path.basename(path)) or "")
        lock.release(unlink=not os.path.isdir(key_dir))
