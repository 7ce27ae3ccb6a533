"""The digest memo's upkeep: its size for `stats`, and the pruning `clear` does.

The memo itself (`DigestMemo`, what a hit reads) is core/hashing.py; this module is what only the
lifecycle commands need, kept off the hit path.
"""

from __future__ import annotations

import os

from imcache.core.files import suppress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MEMO_KEEP_NS = 30 * 86400 * 10**9  # a memo file no entry names is kept this long after writing


def memo_size(folder: str) -> tuple[int, int]:
    """How many files the digest memo holds, and their bytes."""
    files = size = 0
    for path in _memo_files(folder):
        with suppress(OSError):
            size += os.lstat(path).st_size
            files += 1
    return files, size


def prune_memo(
    folder: str, needed: Callable[[], set[str]], now_ns: int, dry_run: bool
) -> tuple[int, int]:
    """Remove memo files that no entry needs: (how many, their bytes).

    A memo file is named by the inode it vouches for, not by a path, so whether its file is gone
    or changed cannot be told. What can: whether its digest is an input of an entry still in the
    cache (`needed`), which a hit of that entry reads. The files inside a folder input are not
    named by any entry (the folder's digest is): a memo file is kept MEMO_KEEP_NS after it was
    written whatever it holds, so such a file is hashed again at most once in that time. A file
    that is not a memo line of ours goes too. `needed()` is asked once, if a file is that old."""
    pruned = freed = 0
    digests: set[str] | None = None
    for path in _memo_files(folder):
        try:
            info = os.lstat(path)
            with open(path, "rb") as handle:
                fields = handle.read(256).split()
        except OSError:
            continue  # replaced or removed meanwhile: a writer's, or another clear's
        ours = len(fields) == 4 and all(field.isdigit() for field in fields[:3])
        if ours and now_ns - info.st_mtime_ns < MEMO_KEEP_NS:
            continue
        digests = needed() if digests is None else digests
        if ours and fields[3].decode("ascii", "replace") in digests:
            continue
        if not dry_run:
            try:
                os.unlink(path)
            except OSError:  # gone meanwhile, or another user's in a shared cache
                continue
        pruned, freed = pruned + 1, freed + info.st_size
    return pruned, freed


def _memo_files(folder: str) -> list[str]:
    """Every file in the memo's 256 folders (`DigestMemo._path`)."""
    paths: list[str] = []
    with suppress(OSError), os.scandir(folder) as buckets:
        for bucket in buckets:
            if bucket.is_dir(follow_symlinks=False):
                with suppress(OSError), os.scandir(bucket.path) as names:
                    paths += [name.path for name in names if not name.is_dir(follow_symlinks=False)]
    return paths
