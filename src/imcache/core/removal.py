"""Removing entries: one under its lock (`remove_entry`, for `clear` and `verify --fix`), and
many side by side (`remove_many`). An entry vanishes at once, renamed aside under its lock; its
files are the `Deleter`'s to delete."""

from __future__ import annotations

import os
from enum import Enum
from functools import partial

from imcache.core.errors import ImcacheError
from imcache.core.files import BACKGROUND_OVER, Deleter, is_real_folder
from imcache.core.forked import map_in_two, may_fork
from imcache.core.layout import deleting_name
from imcache.core.lock import EntryLock
from imcache.core.scan import Entry
from imcache.core.store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Half = Callable[[list[int], Deleter], None]  # removes those entries, into that deleter


class Removal(Enum):
    """What became of an entry that was to be removed (its value is the word a report shows)."""

    REMOVED = "removed"
    KEPT = "kept"  # no longer wanted once locked: used meanwhile, or repaired
    IN_USE = "in use"  # another process holds it
    GONE = "gone"  # removed by someone else meanwhile
    NOT_YOURS = "not yours"  # a shared cache: another user's entry is theirs to remove


PARALLEL_FROM = 1000  # more entries to remove than this and two threads remove them


def remove_many(
    store: Store,
    entries: list[Entry],
    still_wanted: Callable[[Entry], bool],
    deleter: Deleter,
    *,
    fork: bool = False,
) -> list[Removal]:
    """`remove_entry` of each entry, side by side in two halves of whole interface folders
    when there are many: a rename waits on the journal and its folder's lock, not on Python,
    and two folders' renames go side by side. With `fork` (a command's process, which runs no
    other thread), the second half is a forked process's: each then has its own interpreter
    lock (a thread's half waited on it for the Python around each system call: 10,000
    removals took 1.2 s on two threads, and about half that in two processes); else a
    thread's."""
    halves = _halves(entries) if len(entries) > PARALLEL_FROM else (list(range(len(entries))), [])
    outcomes: list[Removal | None] = [None] * len(entries)

    # A large clear's lock files go after its entries' files (a system call each, 10,000 of
    # them, the Deleter's to drop: `purge.drop_locks_of`), where those are deleted after it.
    deleter.locks = deleter.background_root is not None and len(entries) > BACKGROUND_OVER

    def remove(numbers: list[int], into: Deleter) -> None:
        into.locks = deleter.locks
        for number in numbers:
            entry = entries[number]
            outcomes[number] = remove_entry(store, entry, partial(still_wanted, entry), into)

    if not halves[1]:
        remove(halves[0], deleter)
    elif fork and may_fork():
        _side_by_side_forked(halves[0] + halves[1], remove, outcomes, deleter)
    else:
        _side_by_side_threads(halves, remove, deleter)
    return outcomes  # type: ignore[return-value]


def _side_by_side_threads(
    halves: tuple[list[int], list[int]], remove: Half, deleter: Deleter
) -> None:
    import threading

    failed: list[BaseException] = []

    def second() -> None:
        try:
            remove(halves[1], deleter)
        except BaseException as exc:  # raised in the caller's thread, once both are done
            failed.append(exc)

    worker = threading.Thread(target=second)
    worker.start()
    try:
        remove(halves[0], deleter)
    finally:
        worker.join()
    if failed:
        raise failed[0]


def _side_by_side_forked(
    numbers: list[int], remove: Half, outcomes: list[Removal | None], deleter: Deleter
) -> None:
    """`remove` of the entries at `numbers`, the second half in a forked child (`map_in_two`):
    each entry's outcome, and the folder it set aside for the parent's deleter to delete."""

    def one(number: int) -> tuple[Removal, list[str]]:
        aside = Deleter()  # collects only
        remove([number], aside)
        return outcomes[number], aside.paths  # type: ignore[return-value]

    for number, (outcome, paths) in zip(numbers, map_in_two(one, numbers, True), strict=True):
        outcomes[number] = outcome
        for path in paths:
            deleter.add(path)


def _halves(entries: list[Entry]) -> tuple[list[int], list[int]]:
    """The entries' numbers in two halves of as many, by interface folder: each folder is one
    half's but the one the cut falls in (the renames of one folder wait on its lock, one at a
    time; whole folders only, five of them made halves of 6,000 and 4,000)."""
    by_folder = sorted(range(len(entries)), key=lambda number: entries[number].interface)
    middle = len(by_folder) // 2
    return by_folder[:middle], by_folder[middle:]


def remove_entry(
    store: Store, entry: Entry, still_wanted: Callable[[], bool], deleter: Deleter
) -> Removal:
    """Remove an entry nobody uses, if `still_wanted()` under its lock."""
    lock = EntryLock(store.lock_path(entry.interface, entry.key))
    if not lock.try_exclusive():
        return Removal.IN_USE
    renamed = False
    try:
        if not is_real_folder(entry.path):  # gone, or a link or a file: never an entry
            return Removal.GONE
        if not still_wanted():
            return Removal.KEPT
        doomed = deleting_name(entry.path)
        try:
            os.rename(entry.path, doomed)  # the entry vanishes at once; the bytes follow
        except PermissionError:
            return Removal.NOT_YOURS
        renamed = True
        deleter.add(doomed)
        return Removal.REMOVED
    except OSError as exc:
        raise ImcacheError(
            f"cannot remove {entry.path}: {exc.strerror}", "check the cache's permissions"
        ) from exc
    finally:  # the lock file goes too: now, or after the entry's files (`Deleter.locks`)
        lock.release(unlink=not deleter.locks if renamed else not os.path.isdir(entry.path))
