"""The cache root on disk and its entries: the root made and shared, entries prepared and published.

The root describes itself (CACHEDIR.TAG, README, .gitignore, its layout) and is private unless
shared with a group. Entries are prepared empty, published once a run succeeds, or moved aside
when it fails; their used mark and the root's events log record use.

An entry is `<root>/<PACKAGE.Name>/<key>/`. It is complete only once its record `imcache.json`
exists: `publish` writes it last, to a temporary name, and renames it into place. A run fills a
private folder beside it (`prepare_run`) and publishes it there, then `place_entry` renames that
folder onto the key: first one wins, so entries are right even where locks are not shared. What
makes a record intact is `entry`'s to judge; the lock beside each entry is `lock`'s.
"""

from __future__ import annotations

import os
import stat
import time

from imcache.core import cjson
from imcache.core.datatype import datatype
from imcache.core.entry import check_record, encode_record, mark_text, read_record, tree_bytes
from imcache.core.errors import CacheError
from imcache.core.files import suppress, write_atomic
from imcache.core.layout import (
    CACHEDIR_TAG,
    CACHEDIR_TAG_FILE,
    DROPPED_NOTE,
    EVENTS,
    GITIGNORE,
    GITIGNORE_FILE,
    INDEX_FOLDER,
    LAYOUT,
    LAYOUT_FILE,
    OWN_FILES,
    README,
    README_FILE,
    RECORD,
    SHARED_ENTRY_MODE,
    SHARED_LOCK_MODE,
    SHARED_ROOT_MODE,
    USED_MARK,
    failed_name,
    key_of_leftover,
    key_of_lock,
    lock_name,
    run_name,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

FAILED_KEEP_BYTES = 1 << 20  # a failed attempt's files larger than this are not kept


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
            with suppress(FileExistsError):
                os.mkdir(self.root, 0o700)
            self._refuse_foreign()
            self._describe()
            if interface is not None:
                folder = os.path.join(self.root, interface)
                with suppress(FileExistsError):
                    os.mkdir(folder)
                    if self.is_shared():
                        os.chmod(folder, SHARED_ROOT_MODE)

    def _refuse_foreign(self) -> None:
        if not os.access(self.root, os.R_OK | os.X_OK):
            info = os.stat(self.root)
            raise CacheError(
                f"cache root {self.root} belongs to user {user_name(info.st_uid)} "
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
                with suppress(FileNotFoundError, PermissionError):
                    os.chown(os.path.join(self.root, name), -1, gid)
                    os.chmod(os.path.join(self.root, name), 0o644)
            for lock in self._lock_files():
                # An exclusive POSIX lock needs the file open for writing: the group's too.
                with suppress(FileNotFoundError, PermissionError):
                    os.chown(lock, -1, gid)
                    os.chmod(lock, SHARED_LOCK_MODE)
        return _group_name(gid)

    def _lock_files(self) -> list[str]:
        """The entries' lock files, and the indexes the group appends to alike."""
        return [
            os.path.join(folder, name)
            for folder in self._interface_folders()
            for name in os.listdir(folder)
            if key_of_lock(name) is not None or os.path.basename(folder) == INDEX_FOLDER
        ]

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
        layout = cjson.dumps({"layout": LAYOUT, "tool": "imcache"})
        write_atomic(layout_path, layout.encode())

    def read_record(self, entry: str) -> dict[str, Any] | None:
        """The record of a complete entry, or None (see `entry.read_record`)."""
        return read_record(entry)

    def check_record(self, entry: str) -> tuple[dict[str, Any] | None, str]:
        """The record if intact, else None and what is wrong (see `entry.check_record`)."""
        return check_record(entry)

    def open_to_group(self, entry: str) -> None:
        """In a shared cache, let the group read the entry (a no-op for what is already so).

        A run does this before it takes its outputs' signatures: a chmod moves a file's ctime."""
        if self.is_shared():
            _open_to_group(entry)

    def publish(
        self, entry: str, record: dict[str, Any], last_check: Callable[[], None] | None = None
    ) -> None:
        """Write the record last: from this moment the folder is complete (a run's folder is
        then placed onto its key). `last_check` runs just before, and may refuse the entry by
        raising (a process still writing an output)."""
        payload = encode_record(record)
        # The mark holds the entry's size and its inputs, so that `ls`, `stats` and `clear`
        # need neither walk it nor parse its record.
        now = time.time_ns()
        with open(os.path.join(entry, USED_MARK), "wb") as mark:
            mark.write(mark_text(tree_bytes(entry) + len(payload), record, now))
            # Anyone who may read the entry may note its use (the root's mode is the gate).
            os.fchmod(mark.fileno(), 0o666 & ~stat.S_IWOTH)
        self.open_to_group(entry)
        # Our clock, as session start uses, not the file system's tick; the moment the mark
        # says it was published, as its index line will (no use to note: not in place yet).
        self.touch_used_mark(entry, now, note=False)
        if last_check is not None:
            last_check()
        write_atomic(os.path.join(entry, RECORD), payload, durable=True)

    def touch_used_mark(self, entry: str, when_ns: int | None = None, *, note: bool = True) -> None:
        """Last use, kept by us in a mark's mtime (never atime, which mounts often do not keep),
        and noted in the interface's index (one appended line: `ls` and `clear` then read no
        mark; `index.note_use`)."""
        now = time.time_ns() if when_ns is None else when_ns
        mark = os.path.join(entry, USED_MARK)
        try:
            os.utime(mark, ns=(now, now))
        except PermissionError:
            # Another user's entry in a shared cache: setting "now" needs only write access.
            with suppress(OSError):
                os.utime(mark)
        except OSError:
            pass
        if note:
            from imcache.core.index import note_use  # imported by a hit: it adds only xxhash

            note_use(entry, now, shared=self.is_shared)

    def prepare_entry(self, interface: str, key: str) -> str:
        """An empty entry folder, made in place; earlier incomplete or failed attempts are
        removed first. (A run fills a private folder instead: `prepare_run`.)"""
        from imcache.core.attempts import clear_attempts  # a miss only

        entry = self.entry_dir(interface, key)
        clear_attempts(entry, entry_too=True)
        os.mkdir(entry)
        if self.is_shared():
            os.chmod(entry, SHARED_ENTRY_MODE)
        return entry

    def prepare_run(self, interface: str, key: str, *, replace: bool = False) -> str:
        """An empty private folder for a run of `key`, beside its entry (`<key>.run-<host>-<pid>`):
        `place_entry` renames it onto the key once complete, so that no reader, on any host, ever
        sees an entry being filled. Earlier failed attempts are removed first, and the entry
        itself only if `replace` (--force); other processes' runs are left alone."""
        from imcache.core.attempts import (  # a miss only
            clear_attempts,
            mark_ours,
            refuse_replacing_others,
        )

        entry = self.entry_dir(interface, key)
        refuse_replacing_others(entry)
        clear_attempts(entry, entry_too=replace)
        private = run_name(entry, os.urandom(4).hex())
        os.mkdir(private)
        mark_ours(private)
        if self.is_shared():
            os.chmod(private, SHARED_ENTRY_MODE)
        return private

    def place_entry(self, attempt: str, entry: str, *, replace: bool = False) -> bool:
        """Make a complete attempt the entry, by renaming it onto the key (see
        `attempts.place_entry`): True if it is now the entry, False if another publisher won."""
        from imcache.core.attempts import place_entry  # a miss only
        from imcache.core.index import note_entry

        placed = place_entry(attempt, entry, replace=replace)
        if placed:  # its line in the folder's index, for scans (a winner's only: ours is gone)
            note_entry(entry, shared=self.is_shared)
        return placed

    def log_event(self, event: str, interface: str, key: str) -> None:
        """One short line appended (O_APPEND writes of this size do not interleave): for stats."""
        line = f"{time.time():.3f} {event} {interface} {key}\n".encode()
        with suppress(OSError):
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
        """Move a failed attempt aside under a name that says so, for inspection: its logs and
        small files, not its large outputs (a full disk must not stay full of a failure's)."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        folder, name = os.path.split(entry)  # a run's private folder is named after its key
        failed = failed_name(os.path.join(folder, key_of_leftover(name)), stamp)
        os.replace(entry, failed)
        with suppress(OSError):  # what could not go stays; the attempt is aside
            _drop_large_files(failed)
        return failed


class cache_errors:
    """A file-system failure in the cache (read-only, full, not ours) is the user's to fix.

    A class, not `@contextlib.contextmanager`: a hit does not import contextlib."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, OSError):
            where = exc.filename or self.path
            raise CacheError(
                f"cannot write to the cache at {where}: {exc.strerror or exc}",
                "choose a writable --base-dir (or IMCACHE_BASE_DIR), or free some space",
            ) from exc


def _drop_large_files(attempt: str) -> None:
    """Remove the files over FAILED_KEEP_BYTES (imcache's own aside) and list them in a note."""
    dropped = []
    for folder, _dirs, files in os.walk(attempt):
        for name in files:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, attempt)
            info = os.lstat(path)
            if relative in OWN_FILES or not stat.S_ISREG(info.st_mode):
                continue
            if info.st_size > FAILED_KEEP_BYTES:
                os.unlink(path)
                dropped.append(f"{relative}: {info.st_size} bytes, removed\n")
    if dropped:
        note = "A failed attempt keeps files of at most 1 MiB; these were larger:\n"
        write_atomic(os.path.join(attempt, DROPPED_NOTE), (note + "".join(dropped)).encode())


def user_name(uid: int | None) -> str:
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
        _chmod_if_needed(folder, SHARED_ENTRY_MODE)
        for name in files:
            path = os.path.join(folder, name)
            if name != USED_MARK and not os.path.islink(path):
                mode = stat.S_IMODE(os.lstat(path).st_mode)
                _chmod_if_needed(path, (mode | stat.S_IRGRP) & ~(stat.S_IWGRP | stat.S_IWOTH))
        for name in dirs:
            if os.path.islink(os.path.join(folder, name)):
                dirs.remove(name)


def _chmod_if_needed(path: str, mode: int) -> None:
    """A chmod moves ctime even when the mode stays: an output's signature must not move."""
    if stat.S_IMODE(os.lstat(path).st_mode) != mode:
        os.chmod(path, mode)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            data = cjson.loads(handle.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
