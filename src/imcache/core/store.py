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

    def ensure(self, interface: str) -> None:
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
        mark = os.path.join(entry, USED_MARK)
        with open(mark, "wb"):
            pass
        payload = json.dumps(record, indent=1, sort_keys=True).encode("utf-8")
        write_atomic(os.path.join(entry, RECORD), payload, durable=True)

    def record_use(self, entry: str) -> None:
        """Last use, kept by us in a mark's mtime (never atime, which mounts often do not keep)."""
        now = time.time_ns()
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


@contextlib.contextmanager
def entry_lock(path: str, on_wait: Callable[[], None]) -> Iterator[None]:
    """An exclusive flock on the entry's lock file; the kernel drops it if we die."""
    with cache_errors(path):
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            on_wait()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
