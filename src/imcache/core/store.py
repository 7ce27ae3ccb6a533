"""The cache root on disk: entries, their records, locks, and publishing a finished run.

An entry is `<root>/<PACKAGE.Name>/<key>/`. It is complete only once its record `imcache.json`
exists: the record is written last, to a temporary name, and renamed into place. Anything else
(no record, a record that does not parse, outputs that do not match it) is a miss.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from imcache.core.errors import CacheError

LAYOUT = 1
ROOT_NAME = "imcache_mem"
RECORD = "imcache.json"
USED_MARK = ".imcache-used"
LAYOUT_FILE = "imcache-layout.json"
MARK_WIDTH = 21  # the used mark holds the entry's size as text of this fixed width
EVENTS = "events.log"  # hits, misses and failures, one line each, for `imcache stats`
SESSION = "session.json"  # the latest `imcache session start`
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by imcache.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
README = """This folder is imcache's cache: one folder per interface, one entry per key.
Each entry holds a tool's outputs, its captured stdout.txt and stderr.txt, and imcache.json,
the record of the run, written last: an entry without it is incomplete and never used.
Remove entries with `imcache clear`, not by hand while imcache runs.
"""


def cache_root(base_dir: str) -> str:
    return os.path.join(os.path.abspath(base_dir), ROOT_NAME)


@dataclass(frozen=True)
class Store:
    root: str

    def entry_dir(self, interface: str, key: str) -> str:
        return os.path.join(self.root, interface, key)

    def lock_path(self, interface: str, key: str) -> str:
        return os.path.join(self.root, interface, f"{key}.lock")

    def ensure(self, interface: str | None = None) -> None:
        """Create the root (private to its user) with the files that describe it."""
        if os.path.islink(self.root):
            raise CacheError(
                f"cache root {self.root} is a symbolic link",
                "point --base-dir at the real folder instead",
            )
        with cache_errors(self.root):
            os.makedirs(os.path.dirname(self.root), exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.root, 0o700)
            self._describe()
            if interface is not None:
                os.makedirs(os.path.join(self.root, interface), exist_ok=True)

    def _describe(self) -> None:
        layout_path = os.path.join(self.root, LAYOUT_FILE)
        if os.path.exists(layout_path):
            found = _read_json(layout_path)
            if not found or found.get("layout") != LAYOUT:
                raise CacheError(
                    f"cache root {self.root} has an unknown layout ({layout_path})",
                    "use another --base-dir, or remove that folder if it is an old cache",
                )
            return
        write_atomic(os.path.join(self.root, "CACHEDIR.TAG"), CACHEDIR_TAG.encode())
        write_atomic(os.path.join(self.root, "README.txt"), README.encode())
        write_atomic(layout_path, json.dumps({"layout": LAYOUT, "tool": "imcache"}).encode())

    def read_record(self, entry: str) -> dict[str, Any] | None:
        """The record of a complete entry, or None: absent, cut short or not ours is a miss."""
        record = _read_json(os.path.join(entry, RECORD))
        if record is None or record.get("layout") != LAYOUT:
            return None
        return record

    def publish(self, entry: str, record: dict[str, Any]) -> None:
        """Write the record last: from this moment the entry is complete."""
        payload = json.dumps(record, indent=1, sort_keys=True).encode("utf-8")
        # The mark holds the entry's size, so that `ls`, `stats` and `clear` need not walk it.
        size = tree_bytes(entry) + len(payload) + MARK_WIDTH
        with open(os.path.join(entry, USED_MARK), "wb") as mark:
            mark.write(f"{size:>{MARK_WIDTH - 1}}\n".encode())
        self.record_use(entry)  # our clock, as session start uses: not the file system's tick
        write_atomic(os.path.join(entry, RECORD), payload, durable=True)

    def record_use(self, entry: str, when_ns: int | None = None) -> None:
        """Last use, kept by us in a mark's mtime (never atime, which mounts often do not keep).

        One utime call: a hit rewrites no index, whatever the number of entries."""
        now = time.time_ns() if when_ns is None else when_ns
        with contextlib.suppress(OSError):
            os.utime(os.path.join(entry, USED_MARK), ns=(now, now))

    def prepare_entry(self, interface: str, key: str) -> str:
        """An empty entry folder; an earlier incomplete or failed attempt is removed first."""
        entry = self.entry_dir(interface, key)
        parent = os.path.dirname(entry)
        os.makedirs(parent, exist_ok=True)
        for name in os.listdir(parent):
            if name == key or name.startswith(f"{key}.failed-"):
                shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        os.mkdir(entry)
        return entry

    def log_event(self, event: str, interface: str, key: str) -> None:
        """One short line appended (O_APPEND writes of this size do not interleave): for stats."""
        line = f"{time.time():.3f} {event} {interface} {key}\n".encode()
        with contextlib.suppress(OSError):
            fd = os.open(
                os.path.join(self.root, EVENTS), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
            )
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def keep_failed(self, entry: str) -> str:
        """Move a failed attempt aside under a name that says so, for inspection."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        failed = f"{entry}.failed-{stamp}-{os.getpid()}"
        os.replace(entry, failed)
        return failed


@contextlib.contextmanager
def cache_errors(path: str) -> Iterator[None]:
    """A file-system failure in the cache (read-only, full, not ours) is the user's to fix."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or path
        raise CacheError(
            f"cannot write to the cache at {where}: {exc.strerror or exc}",
            "choose a writable --base-dir (or IMCACHE_BASE_DIR), or free some space",
        ) from exc


def tree_bytes(path: str) -> int:
    """Bytes of every file below `path`, links not followed."""
    total = 0
    with os.scandir(path) as children:
        for child in children:
            if child.is_dir(follow_symlinks=False):
                total += tree_bytes(child.path)
            else:
                total += child.stat(follow_symlinks=False).st_size
    return total


def write_atomic(path: str, payload: bytes, durable: bool = False) -> None:
    """Write to a temporary name in the same folder, then rename: readers see all or nothing."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    if durable:
        _fsync_dir(os.path.dirname(path))


def _fsync_dir(folder: str) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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
        _drop_held(
            self.path
        )  # our own earlier hold must not block us (several runs in one process)
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
        try:
            with cache_errors(self.path):
                try:
                    return os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
                except (PermissionError, OSError) as exc:
                    if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
                        raise
                    # A read-only cache: nobody can remove from it, a shared lock is enough.
                    return os.open(self.path, os.O_RDONLY)
        except CacheError:
            return None

    def _still_ours(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False
