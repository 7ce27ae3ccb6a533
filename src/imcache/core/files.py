"""The two ways imcache changes files: put one in place atomically, and remove a tree.

Every file imcache publishes (a record, the root's own files, a memo line, an export) is made under
a temporary name in the target's own folder (the same file system, so the rename is atomic) and
renamed into place: a reader sees the old file or the new one, never half of one. Every tree it
removes (an entry, a failed attempt, a half-deleted leftover) goes through `remove_tree`.
"""

from __future__ import annotations

import os

from imcache.core.layout import temporary_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")


class suppress:
    """`contextlib.suppress`, without importing contextlib (and the collections and functools it
    loads) on a hit."""

    __slots__ = ("kinds",)

    def __init__(self, *kinds: type[BaseException]) -> None:
        self.kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> bool:
        return kind is not None and issubclass(kind, self.kinds)


def place_atomic(
    path: str,
    make: Callable[[str], T],
    *,
    durable: bool = False,
    temporary: str | None = None,
    dir_fd: int | None = None,
) -> T:
    """`make(temporary)` writes the file; then it replaces `path` in one step.

    On any failure the temporary is removed and `path` is left as it was. `durable` fsyncs the
    folder too, so that the rename survives a power cut (`make` fsyncs the file itself). With
    `dir_fd`, `path` and the temporary are names in that open folder (`make` opens it with
    `dir_fd` too): a folder others may write to cannot be swapped for a link meanwhile."""
    temporary = temporary or temporary_name(path)
    within = {} if dir_fd is None else {"dir_fd": dir_fd}
    with suppress(FileNotFoundError):
        os.unlink(temporary, **within)  # a leftover of a killed process with our pid
    try:
        made = make(temporary)
        if dir_fd is None:
            os.replace(temporary, path)
        else:
            os.replace(temporary, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    finally:
        with suppress(FileNotFoundError):
            os.unlink(temporary, **within)
    if durable and dir_fd is not None:
        os.fsync(dir_fd)
    elif durable:
        fsync_folder(os.path.dirname(path))
    return made


def write_atomic(
    path: str, payload: bytes, *, durable: bool = False, temporary: str | None = None
) -> None:
    """Write `payload` to `path`: readers see all of it or the file as it was."""

    def write(where: str) -> None:
        with open(where, "wb") as handle:
            handle.write(payload)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())

    place_atomic(path, write, durable=durable, temporary=temporary)


def fsync_folder(folder: str) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_tree(path: str) -> None:
    """rmtree that shares the work: a `clear` may be removing the same leftover right now.

    Its deletions show up here as files vanishing under our walk; go again until the folder
    is gone. Any other failure is raised.
    """
    import shutil  # not on the hit path: it imports its compressors

    for _ in range(10):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            if not os.path.lexists(path):
                return
    shutil.rmtree(path)


def is_real_folder(path: str) -> bool:
    """A folder itself, not a link to one (whose target's files a removal would delete)."""
    import stat

    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def remove_tree_quietly(path: str) -> None:
    """Remove what can be removed (a background deletion): a failure leaves it for a later sweep."""
    try:
        remove_tree(path)
    except OSError:
        import shutil

        shutil.rmtree(path, ignore_errors=True)  # as much as can go


# More trees than this and a clear hands them to a detached deleter (core/purge.py) and returns.
# Starting one costs about 50 ms (an interpreter); an entry takes about 1 ms to delete here, so
# below 100 of them the foreground is about as quick, and what was removed is off the disk when
# the command returns (as every small clear, and every test of one, has always seen it).
BACKGROUND_OVER = 100


class Deleter:
    """Trees to remove, removed together when the `with` block ends, on a few threads that each
    take a share of the list. Not a task per tree: handing each of 10,000 entries to a pool
    had five threads fighting for the GIL (a futex call per unlink) and the journal, at a third
    of the speed of two threads that each just unlink their share.

    With `background_root` (the cache root the trees were set aside in), more than
    BACKGROUND_OVER trees go to a detached deleter instead (`in_background` counts them); if it
    cannot take them they are removed here, as without."""

    def __init__(self, threads: int = 2, background_root: str | None = None) -> None:
        self.threads = threads
        self.background_root = background_root
        self.paths: list[str] = []
        self.in_background = 0
        self.locks = False  # the entries' lock files are left to drop after their trees

    def add(self, path: str) -> None:
        self.paths.append(path)

    def __enter__(self) -> Deleter:
        return self

    def __exit__(self, *_: object) -> None:
        self.finish()

    def finish(self) -> None:
        paths, self.paths = self.paths, []
        if self.background_root is not None and len(paths) > BACKGROUND_OVER:
            from imcache.core.purge import hand_over  # a large clear only

            if hand_over(self.background_root, paths):  # which drops their lock files too
                self.in_background += len(paths)
                return
        remove_shared(paths, self.threads)
        if self.locks:
            from imcache.core.purge import drop_locks_of

            drop_locks_of(paths)


def remove_shared(paths: list[str], threads: int) -> None:
    """`remove_trees` of `paths`, on `threads` threads that each take a share (a large list)."""
    shares = [paths[i::threads] for i in range(threads)] if len(paths) > 64 else []
    if not shares:
        remove_trees(paths)
        return
    import threading  # only for a large clear

    workers = [threading.Thread(target=remove_trees, args=(share,)) for share in shares[1:]]
    for worker in workers:
        worker.start()
    remove_trees(shares[0])
    for worker in workers:
        worker.join()


def remove_trees(paths: list[str]) -> None:
    """Remove entries set aside (a background deletion: what fails is left for a later sweep).

    An entry is mostly files: unlink each name, and walk only what turns out to be a folder."""
    for path in paths:
        if os.path.islink(path):  # never followed: its target is not ours to empty
            with suppress(OSError):
                os.unlink(path)
            continue
        try:
            for name in os.listdir(path):
                child = os.path.join(path, name)
                try:
                    os.unlink(child)  # a link is removed, never followed
                except IsADirectoryError:
                    remove_tree(child)
            os.rmdir(path)
        except OSError:  # a concurrent sweep, a folder we may not empty: the careful way
            remove_tree_quietly(path)
