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
import stat
import time
from collections.abc import Callable, Iterator
from typing import Any

import xxhash

from imcache.core.datatype import datatype
from imcache.core.errors import CacheError
from imcache.core.files import remove_tree, write_atomic
from imcache.core.layout import (
    CACHEDIR_TAG,
    CACHEDIR_TAG_FILE,
    EVENTS,
    GITIGNORE,
    GITIGNORE_FILE,
    LAYOUT,
    LAYOUT_FILE,
    MARK_WIDTH,
    README,
    README_FILE,
    RECORD,
    SHARED_ENTRY_MODE,
    SHARED_ROOT_MODE,
    USED_MARK,
    attempts_of,
    deleting_name,
    failed_name,
    is_key,
    lock_name,
)


@datatype
class Store:
    root: str

    def entry_dir(self, interface: str, key: str) -> str:
        return os.path.join(self.root, interface, key)

    def lock_path(self, interface: str, key: str) -> str:
        return os.path.join(self.root, interface, lock_name(key))

    def refuse_link(self) -> None:
        """A root that is a link would put entries (and deletions) somewhere nobody chose."""
        if os.path.islink(self.root):
            raise CacheError(
                f"cache root {self.root} is a symbolic link (to {os.readlink(self.root)})",
                "point --base-dir at the real folder instead",
            )

    def ensure(self, interface: str | None = None) -> None:
        """Create the root (private to its user) with the files that describe it."""
        self.refuse_link()
        with cache_errors(self.root):
            os.makedirs(os.path.dirname(self.root), exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.root, 0o700)
            self._refuse_foreign()
            self._describe()
            if interface is not None:
                folder = os.path.join(self.root, interface)
                with contextlib.suppress(FileExistsError):
                    os.mkdir(folder)
                    if self.is_shared():
                        os.chmod(folder, SHARED_ROOT_MODE)

    def _refuse_foreign(self) -> None:
        if not os.access(self.root, os.R_OK | os.X_OK):
            info = os.stat(self.root)
            raise CacheError(
                f"cache root {self.root} belongs to user {_user_name(info.st_uid)} "
                f"(mode {stat.S_IMODE(info.st_mode):o}) and you may not use it",
                "use a --base-dir of your own, or ask its owner to share it with "
                "'imcache init --shared --group GROUP'",
            )

    def is_shared(self) -> bool:
        """A root its group may write to is a shared cache; a new root is private (0700)."""
        try:
            return bool(os.stat(self.root).st_mode & stat.S_IWGRP)
        except OSError:
            return False

    def share(self, group: str | None) -> str:
        """Make the root a group-shared cache (creating it if needed); the group's name."""
        self.ensure()
        gid = _group_id(group) if group is not None else os.stat(self.root).st_gid
        with cache_errors(self.root):
            for folder in [self.root, *self._interface_folders()]:
                if os.stat(folder).st_uid == os.geteuid():
                    os.chown(folder, -1, gid)
                    os.chmod(folder, SHARED_ROOT_MODE)
            for name in (CACHEDIR_TAG_FILE, README_FILE, GITIGNORE_FILE, LAYOUT_FILE):
                with contextlib.suppress(FileNotFoundError, PermissionError):
                    os.chown(os.path.join(self.root, name), -1, gid)
                    os.chmod(os.path.join(self.root, name), 0o644)
        return _group_name(gid)

    def _interface_folders(self) -> list[str]:
        with os.scandir(self.root) as children:
            return [c.path for c in children if c.is_dir(follow_symlinks=False)]

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
        write_atomic(os.path.join(self.root, CACHEDIR_TAG_FILE), CACHEDIR_TAG.encode())
        write_atomic(os.path.join(self.root, README_FILE), README.encode())
        write_atomic(os.path.join(self.root, GITIGNORE_FILE), GITIGNORE.encode())
        write_atomic(layout_path, json.dumps({"layout": LAYOUT, "tool": "imcache"}).encode())

    def read_record(self, entry: str) -> dict[str, Any] | None:
        """The record of a complete entry, or None: absent, cut short or not ours is a miss."""
        record, _problem = self.check_record(entry)
        return record

    def check_record(self, entry: str) -> tuple[dict[str, Any] | None, str]:
        """The record if intact; else None and what is wrong with it ("" when there is none)."""
        path = os.path.join(entry, RECORD)
        try:
            with open(path, "rb") as handle:
                payload = handle.read()
        except FileNotFoundError:
            return None, ""
        except OSError as exc:
            return None, f"its record cannot be read ({exc.strerror})"
        try:
            record = json.loads(payload)
        except ValueError:
            return None, "its record is not valid JSON (cut short or edited)"
        if not isinstance(record, dict) or record.get("layout") != LAYOUT:
            return None, "its record is not one of this imcache's"
        if record.get("check") != record_check(record):
            return None, "its record was edited (checksum mismatch)"
        return record, ""

    def publish(self, entry: str, record: dict[str, Any]) -> None:
        """Write the record last: from this moment the entry is complete."""
        record = {**record, "check": record_check(record)}
        payload = json.dumps(record, indent=1, sort_keys=True).encode("utf-8")
        # The mark holds the entry's size, so that `ls`, `stats` and `clear` need not walk it.
        size = tree_bytes(entry) + len(payload) + MARK_WIDTH
        with open(os.path.join(entry, USED_MARK), "wb") as mark:
            mark.write(f"{size:>{MARK_WIDTH - 1}}\n".encode())
            # Anyone who may read the entry may note its use (the root's mode is the gate).
            os.fchmod(mark.fileno(), 0o666 & ~stat.S_IWOTH)
        if self.is_shared():
            _open_to_group(entry)
        self.touch_used_mark(entry)  # our clock, as session start uses: not the file system's tick
        write_atomic(os.path.join(entry, RECORD), payload, durable=True)

    def touch_used_mark(self, entry: str, when_ns: int | None = None) -> None:
        """Last use, kept by us in a mark's mtime (never atime, which mounts often do not keep).

        One utime call: a hit rewrites no index, whatever the number of entries."""
        now = time.time_ns() if when_ns is None else when_ns
        mark = os.path.join(entry, USED_MARK)
        try:
            os.utime(mark, ns=(now, now))
        except PermissionError:
            # Another user's entry in a shared cache: setting "now" needs only write access.
            with contextlib.suppress(OSError):
                os.utime(mark)
        except OSError:
            pass

    def prepare_entry(self, interface: str, key: str) -> str:
        """An empty entry folder; an earlier incomplete or failed attempt is removed first."""
        entry = self.entry_dir(interface, key)
        parent = os.path.dirname(entry)
        os.makedirs(parent, exist_ok=True)
        for name in os.listdir(parent):
            if name == key or name.startswith(attempts_of(key)):
                path = os.path.join(parent, name)
                if _owner_of(path) not in (os.geteuid(), None) and os.geteuid() != 0:
                    if name != key:
                        continue  # another user's failed attempt: theirs to remove
                    raise CacheError(
                        f"entry {path} belongs to user {_user_name(_owner_of(path))}, and a "
                        "shared cache never lets one user replace another's entry",
                        "ask them to run it again (or to run 'imcache verify --fix' if it is "
                        "damaged), or use a private --base-dir",
                    )
                _remove_attempt(path)
        os.mkdir(entry)
        if self.is_shared():
            os.chmod(entry, SHARED_ENTRY_MODE)
        return entry

    def log_event(self, event: str, interface: str, key: str) -> None:
        """One short line appended (O_APPEND writes of this size do not interleave): for stats."""
        line = f"{time.time():.3f} {event} {interface} {key}\n".encode()
        with contextlib.suppress(OSError):
            fd = os.open(
                os.path.join(self.root, EVENTS), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o664
            )
            try:
                os.write(fd, line)
                if os.fstat(fd).st_mode & 0o060 != 0o060 and self.is_shared():
                    os.fchmod(fd, 0o664)  # the whole group appends to a shared cache's log
            finally:
                os.close(fd)

    def keep_failed(self, entry: str) -> str:
        """Move a failed attempt aside under a name that says so, for inspection."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        failed = failed_name(entry, stamp)
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


def _remove_attempt(path: str) -> None:
    """Remove an earlier attempt; a failure (a read-only cache) is reported, never hidden.

    An entry is renamed aside first, in one step: killed half-way through the deletion, we
    must not leave its record standing over half its files (a hit naming files that are gone).
    """
    try:
        if is_key(os.path.basename(path)):
            doomed = deleting_name(path)
            os.rename(path, doomed)
            path = doomed
        remove_tree(path)
    except OSError as exc:
        raise CacheError(
            f"cannot remove the earlier attempt {path}: {exc.strerror or exc}",
            "choose a writable --base-dir (or IMCACHE_BASE_DIR)",
        ) from exc


def _owner_of(path: str) -> int | None:
    try:
        return os.lstat(path).st_uid
    except FileNotFoundError:
        return None


def _user_name(uid: int | None) -> str:
    import pwd  # only for messages about other users

    try:
        return pwd.getpwuid(uid if uid is not None else -1).pw_name
    except (KeyError, OverflowError):
        return str(uid)


def _group_id(group: str) -> int:
    import grp

    try:
        return int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise CacheError(f"no group is named {group!r}", "give a group name or number") from None


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _open_to_group(entry: str) -> None:
    """A finished entry in a shared cache: the group reads it, only its owner may change it."""
    for folder, dirs, files in os.walk(entry):
        os.chmod(folder, SHARED_ENTRY_MODE)
        for name in files:
            path = os.path.join(folder, name)
            if name != USED_MARK and not os.path.islink(path):
                mode = os.lstat(path).st_mode
                os.chmod(path, (mode | stat.S_IRGRP) & ~(stat.S_IWGRP | stat.S_IWOTH))
        for name in dirs:
            if os.path.islink(os.path.join(folder, name)):
                dirs.remove(name)


def record_check(record: dict[str, Any]) -> str:
    """A checksum of the record's content (its own `check` field aside), to notice edits."""
    content = {name: value for name, value in record.items() if name != "check"}
    return xxhash.xxh3_128_hexdigest(json.dumps(content, sort_keys=True).encode())


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
                    # Readable by the group: the root's mode decides who gets this far, and in
                    # a shared cache other users lock this file too (flock needs no write).
                    return os.open(self.path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
                except (PermissionError, OSError) as exc:
                    if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
                        raise
                    # A read-only cache: nobody can remove from it, a shared lock is enough.
                    return os.open(self.path, os.O_RDONLY)
        except CacheError:
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
