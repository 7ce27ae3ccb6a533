"""An entry's lock: `EntryLock`, a flock on `<key>.lock`, and the holds kept until we exit.

A run takes it exclusively to make an entry, `clear` and `verify --fix` to remove one; a hit and a
finished run keep it shared (`hold_until_exit`), so that a concurrent `clear` never removes an entry
whose paths this process is handing out. Where the lock file lives is the store's (`lock_path`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable

# Locks of hits and finished runs, held until the process exits (the kernel then drops them), so
# that a concurrent `clear` never removes an entry whose paths this process is handing out.
_HELD: dict[str, int] = {}


def _drop_held(path: str) -> None:
    fd = _HELD.pop(path, None)
    if fd is not None:
        os.close(fd)


class EntryLock:
    """A flock on `<key>.lock`: exclusive to run or remove an entry, shared to use it.

    The kernel drops the lock when its process dies, so a `kill -9` never leaves a stale lock.
    After locking we check that the path still names the file we locked: `clear` unlinks the lock
    file of an entry it removes, and a lock on an unlinked file would protect nothing.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, exclusive: bool, on_wait: Callable[[], None] | None = None) -> bool:
        """Block until locked (calling `on_wait` once if we must wait); False if not lockable."""
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        # Our own earlier hold must not block us (several runs in one process).
        _drop_held(self.path)
        waited = False
        while True:
            fd = self._open(create=True)
            if fd is None:
                return False
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None and not waited:
                    on_wait()
                    waited = True
                fcntl.flock(fd, mode)
            if self._still_ours(fd):
                self.fd = fd
                return True
            os.close(fd)

    def try_exclusive(self) -> bool:
        """Lock at once or not at all: an entry someone uses or runs is left alone."""
        _drop_held(self.path)
        fd = self._open(create=True)
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        if not self._still_ours(fd):
            os.close(fd)
            return False
        self.fd = fd
        return True

    def hold_until_exit(self) -> None:
        """Keep a shared lock for the rest of the process (converting an exclusive one)."""
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_SH)
            _drop_held(self.path)
            _HELD[self.path] = self.fd
            self.fd = None

    def release(self, unlink: bool = False) -> None:
        if self.fd is None:
            return
        if unlink:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = None

    def _open(self, create: bool) -> int | None:
        """The lock file's descriptor, or None if we can neither make nor open it."""
        try:
            # Readable by the group: the root's mode decides who gets this far, and in a shared
            # cache other users lock this file too (flock needs no write).
            return os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
                return None
        # A read-only cache: nobody can remove from it, a shared lock is enough.
        with contextlib.suppress(OSError):
            return os.open(self.path, os.O_RDONLY)
        return None

    def _still_ours(self, fd: int) -> bool:
        try:
            mine = os.fstat(fd)
            if os.stat(self.path).st_ino != mine.st_ino:
                return False
        except FileNotFoundError:
            return False
        if mine.st_mode & 0o044 != 0o044 and mine.st_uid == os.geteuid():
            with contextlib.suppress(OSError):
                os.fchmod(fd, 0o644)  # made under a strict umask: others must read it to lock
        return True
