"""File and folder digests (xxh3-128), the digest memo that spares a hit the reading, and the
signatures that tell whether an input changed since it was hashed. The key stream that these
digests feed is core/keystream.py."""

from __future__ import annotations

import os
import stat
import time

import xxhash

from imcache.core.companions import companions, may_have_companions
from imcache.core.errors import ImcacheError, InputChangedError, UsageError
from imcache.core.files import suppress, write_atomic
from imcache.core.interfaces.model import FileArg, SubArg, Value
from imcache.core.layout import ROOT_NAME, temporary_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn, TypeAlias

# What says a file is still the one we hashed: replaced (dev, inode), resized, or written to (any
# write moves mtime and ctime). Compared after hashing and again after the tool has run.
Signature = tuple[int, int, int, int, int]
Seen = dict[str, Signature]
RACY_NS = 2 * 10**9  # a file changed this close to its hashing is not memoised (coarse clocks)
READ_AHEAD_BYTES = 64 << 20  # below this, threads cost more than they save
PROGRESS_SLICE = 64 << 20  # bytes hashed between two progress reports
Progress: TypeAlias = "Callable[[int], None]"  # told of each run of bytes read
MMAP_THRESHOLD = 1 << 20  # below this a plain read is as fast and costs no mapping
READ_CHUNK = 1 << 24


def utf8(text: str) -> bytes:
    # surrogateescape keeps file names that are not UTF-8 (Linux allows any bytes) distinct.
    return text.encode("utf-8", "surrogateescape")


class NotMemoised(Exception):
    """A file the memo cannot vouch for, met by a Reader told not to hash (`memo_only`)."""


class Reader:
    """Reads input files for the key: digests from the memo when it can vouch for them, else
    by reading; keeps each file's signature as hashed (`seen`) to tell later if it changed.

    `memo_only`: raise NotMemoised instead of reading a file (the hit without click stops
    there and hands the run to the full command, which hashes it once, with its bar)."""

    def __init__(
        self,
        memo: DigestMemo | None = None,
        progress: Progress | None = None,
        memo_only: bool = False,
    ) -> None:
        self.memo = memo
        self.memo_only = memo_only
        self.progress = progress  # told of bytes read, for a bar when hashing takes a while
        self.seen: Seen = {}
        self.digests: dict[str, str] = {}  # read ahead on threads (`read_ahead`)
        self.found: dict[str, list[str]] = {}  # each input's companions, found once
        self.found_in: Seen = {}  # the signature of the file they were found in
        self.declared: dict[str, list[str]] = {}  # companions the definition names, by input
        self.files: dict[str, dict[str, Any]] = {}  # each input file as it entered the key

    def describe(self, value: Value | dict[str, Value]) -> Any:
        """A value as JSON, files as {file, xxh3, companions}: what `imcache explain` diffs."""
        if isinstance(value, FileArg):
            return self.files.get(value.path, {"file": os.path.basename(value.path)})
        if isinstance(value, SubArg):
            return {"variant": value.variant, "values": self.describe(value.values)}
        if isinstance(value, dict):
            return {key: self.describe(item) for key, item in sorted(value.items())}
        if isinstance(value, list):
            return [self.describe(item) for item in value]
        return value

    def companions_of(self, path: str) -> list[str]:
        """The files `path` is read with (companions.py), found once per run."""
        found = self.found.get(path)
        if found is None:
            found = []
            if may_have_companions(path):  # a suffix test: most inputs stop here
                try:
                    before = os.stat(path)
                except OSError as exc:
                    raise InputChangedError(
                        f"input {path!r} went away while imcache was reading it",
                        "run again once nothing moves it any more; nothing was run or cached",
                    ) from exc
                if stat.S_ISREG(before.st_mode):
                    found = companions(path)
                    if signature(os.stat(path)) != signature(before):
                        self._refuse_changed(path)
                    self.found_in[path] = signature(before)
            if path in self.declared:
                found = sorted({*found, *self.declared[path]} - {path})
            self.found[path] = found
        return found

    def _with_companions(self, paths: list[str]) -> list[str]:
        found = []
        for path in paths:
            found.append(path)
            # A missing or moving companion is reported where the key is made, in input order.
            with suppress(ImcacheError, OSError):
                found += self.companions_of(path)
        return found

    def check_companions_belong(self, path: str) -> None:
        """The companions were read from the very header that was hashed, not an older one."""
        if path in self.found_in and self.seen.get(path) != self.found_in[path]:
            self._refuse_changed(path)

    def _refuse_changed(self, path: str) -> NoReturn:
        raise InputChangedError(
            f"input {path!r} changed while imcache was reading it",
            "run again once nothing writes to it any more; nothing was run or cached",
        )

    def file_digest(self, path: str, before: os.stat_result) -> str:
        digest = self.digests.get(path)
        if digest is None:
            digest = self.memo.get(before) if self.memo is not None else None
        if digest is None:
            if self.memo_only:
                raise NotMemoised(path)
            started_ns = time.time_ns()
            if self.progress is None:
                digest = digest_file(path, before.st_size)
            else:
                digest = digest_file(path, before.st_size, self.progress)
            self.check_unchanged(path, before)
            if self.memo is not None:
                self.memo.put(before, digest, started_ns)
        self.seen[path] = signature(before)
        return digest

    def check_unchanged(self, path: str, before: os.stat_result) -> None:
        """A file written to while we read it has no one content: refuse, never key on a mix."""
        if signature(os.stat(path)) != signature(before):
            self._refuse_changed(path)
        self.seen[path] = signature(before)

    def check_folder_unchanged(self, path: str, before: Signature) -> None:
        """A folder by its names, not its mtime: the cache root made inside it (the default base
        is the current folder) adds a name that is no part of its content."""
        if folder_signature(path, os.stat(path)) != before:
            self._refuse_changed(path)
        self.seen[path] = before

    def read_ahead(self, paths: list[str]) -> None:
        """Hash several files on threads (xxhash lets go of the GIL on large buffers)."""
        todo = []
        for path in dict.fromkeys(self._with_companions(paths)):
            with suppress(OSError):
                info = os.stat(path)
                known = self.memo.get(info) if self.memo is not None else None
                if known is not None:
                    self.digests[path] = known  # a hit's inputs: no pool, no thread
                elif stat.S_ISREG(info.st_mode):
                    todo.append((path, info))
        if todo and self.memo_only:
            raise NotMemoised(todo[0][0])
        if len(todo) < 2 or sum(info.st_size for _, info in todo) < READ_AHEAD_BYTES:
            return  # not worth a thread pool
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(4, len(todo))) as pool:
            found = pool.map(lambda item: self.file_digest(*item), todo)
            self.digests.update(zip((path for path, _ in todo), found, strict=True))


class DigestMemo:
    """File digests kept in the cache root, by (device, inode, size, mtime_ns, ctime_ns).

    One small file per inode, replaced atomically, so concurrent writers never tear one. A
    digest is stored only if the file was last changed well before its hashing began (git's
    "racily clean" rule): a write within the same timestamp tick as our reading could leave
    the signature unchanged, so such a file is simply hashed again next time."""

    def __init__(self, folder: str, read_only: bool = False) -> None:
        self.folder = folder
        self.read_only = read_only  # `imcache explain` never writes the cache

    def _path(self, info: os.stat_result) -> str:
        name = f"{info.st_dev:x}-{info.st_ino:x}"
        return os.path.join(self.folder, f"{info.st_ino & 0xFF:02x}", name)

    def get(self, info: os.stat_result) -> str | None:
        try:
            with open(self._path(info), "rb") as handle:
                fields = handle.read(256).split()
        except OSError:
            return None
        wanted = [str(n).encode() for n in signature(info)[2:]]
        if len(fields) != 4 or fields[:3] != wanted:
            return None
        return fields[3].decode("ascii", "replace")

    def put(self, info: os.stat_result, digest: str, started_ns: int) -> None:
        if self.read_only or max(info.st_mtime_ns, info.st_ctime_ns) + RACY_NS > started_ns:
            return  # changed too recently to vouch for: hashed again next time
        path = self._path(info)
        line = " ".join(str(n) for n in signature(info)[2:]) + f" {digest}\n"
        # Threads of one process hash files at once: each writes under a name of its own.
        import threading  # a file just hashed only: a hit stores no digest

        temporary = temporary_name(path, per_thread=threading.get_ident())
        # A read-only or full cache: the memo is only a shortcut.
        with suppress(OSError):
            # Never the cache root itself: that is made by Store.ensure, private and described.
            for folder in (self.folder, os.path.dirname(path)):
                with suppress(FileExistsError):
                    os.mkdir(folder)
            write_atomic(path, line.encode(), temporary=temporary)


def signature(info: os.stat_result) -> Signature:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def folder_signature(path: str, info: os.stat_result) -> Signature:
    """A folder as (device, inode, -1, digest of its names but the cache root's, -1).

    Its mtime would move when imcache makes its cache root inside it; every file below keeps
    a signature of its own, so a name added, removed or renamed is what is left to watch."""
    names = sorted(name for name in os.listdir(path) if name != ROOT_NAME)
    digest = xxhash.xxh3_64_intdigest("\0".join(names).encode("utf-8", "surrogateescape"))
    return (info.st_dev, info.st_ino, -1, digest, -1)


def changed_since(seen: Seen) -> list[str]:
    """The inputs of `seen` that are no longer what was hashed (gone, replaced or written)."""
    changed = []
    for path, before in seen.items():
        try:
            info = os.stat(path)
            folder = before[2] == -1 and stat.S_ISDIR(info.st_mode)
            now = folder_signature(path, info) if folder else signature(info)
        except OSError:
            changed.append(path)
            continue
        if now != before:
            changed.append(path)
    return changed


def digest_path(path: str, reader: Reader | None = None) -> str:
    """xxh3-128 of a file's content, or of a folder's sorted tree."""
    reader = Reader() if reader is None else reader
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            before = folder_signature(path, info)
            digest = digest_tree(path, reader)
            reader.check_folder_unchanged(path, before)
            return digest
        return reader.file_digest(path, info)
    except OSError as exc:
        culprit = exc.filename if isinstance(exc.filename, str) else path  # the file in a folder
        raise UsageError(
            f"cannot read input {culprit!r}: {exc.strerror}",
            "check that it exists and is readable",
        ) from exc


def digest_file(path: str, size: int | None = None, progress: Progress | None = None) -> str:
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size if size is None else size
        if size >= MMAP_THRESHOLD:
            import mmap  # hashing only: a hit reads digests from the memo

            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                if progress is None:
                    hasher.update(mapped)
                else:  # in slices (no copies), to tell how far it got
                    view = memoryview(mapped)
                    for start in range(0, size, PROGRESS_SLICE):
                        hasher.update(view[start : start + PROGRESS_SLICE])
                        progress(min(PROGRESS_SLICE, size - start))
                    view.release()
        else:
            while chunk := handle.read(READ_CHUNK):
                hasher.update(chunk)
                if progress is not None:
                    progress(len(chunk))
    return hasher.hexdigest()


def digest_tree(root: str, reader: Reader | None = None) -> str:
    """Every entry by relative name and kind, files by content.

    A cache root (`imcache_mem`) anywhere below is no part of it: imcache writes there itself,
    so a folder holding the cache would change with every run, or while it is read.
    A link counts by its target text and by what it points at (the tool reads through it), so a
    changed target changes the digest; a link back up the tree counts by its text alone.
    """
    hasher = xxhash.xxh3_128()
    reader = Reader() if reader is None else reader
    for relative, kind, payload in _walk(root, "", frozenset({os.path.realpath(root)}), reader):
        for part in (utf8(relative), kind, payload):
            hasher.update(len(part).to_bytes(8, "little"))  # struct.pack("<Q")
            hasher.update(part)
    return hasher.hexdigest()


def _walk(
    folder: str, prefix: str, chain: frozenset[str], reader: Reader
) -> list[tuple[str, bytes, bytes]]:
    found: list[tuple[str, bytes, bytes]] = []
    with os.scandir(folder) as entries:
        ordered = sorted(entries, key=lambda entry: entry.name)
    for entry in ordered:
        if entry.name == ROOT_NAME:
            continue  # the cache (ours or another's): never an input's content
        relative = f"{prefix}/{entry.name}" if prefix else entry.name
        if entry.is_symlink():
            found.append((relative, b"l", utf8(os.readlink(entry.path))))
        real = os.path.realpath(entry.path)
        if entry.is_dir():
            if real in chain:
                continue
            found.append((relative, b"d", b""))
            before = folder_signature(entry.path, os.stat(entry.path))
            found += _walk(entry.path, relative, chain | {real}, reader)
            reader.check_folder_unchanged(entry.path, before)
        elif entry.is_file():
            digest = reader.file_digest(entry.path, os.stat(entry.path))
            found.append((relative, b"f", digest.encode()))
        elif not entry.is_symlink():
            found.append((relative, b"?", b""))
    return found


def file_digests(root: str, skip: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """Every file below `root` (links not followed) by relative path: size and xxh3, or link text.

    What `imcache verify` checks an entry against, long after it was made."""
    found: dict[str, dict[str, Any]] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root)
            if relative in skip:
                continue
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                found[relative] = {"link": os.readlink(path)}
            elif stat.S_ISREG(info.st_mode):
                found[relative] = {"size": info.st_size, "xxh3": digest_file(path, info.st_size)}
    return dict(sorted(found.items()))


# --- keeping the memo bounded (`clear`, `stats`) ------------------------------------------------
