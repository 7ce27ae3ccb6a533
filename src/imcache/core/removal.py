"""Removing entries: one under its lock (`remove_entry`, for `clear` and `verify --fix`), and
many side by side (`remove_many`). An entry vanishes at once, renamed aside under its lock; its
files are the `Deleter`'s to delete."""

from __future__ import annotations

import os
from collections import Counter
from enum import Enum
from functools import partial

from imcache.core.errors import ImcacheError
from imcache.core.files import Deleter, is_real_folder
from imcache.core.layout import deleting_name
from imcache.core.lock import EntryLock
from imcache.core.scan import Entry
from imcache.core.store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Removal(Enum):
    """What became of an entry that was to be removed (its value is the word a report shows)."""

    REMOVED = "removed"
    KEPT = "kept"  # no longer wanted once locked: used meanwhile, or repaired
    IN_USE = "in use"  # another process holds it
    GONE = "gone"  # removed by someone else meanwhile
    NOT_YOURS = "not yours"  # a shared cache: another user's entry is theirs to remove


PARALLEL_FROM = 1000  # more entries to remove than this and two threads remove them


def remove_many(
    store: Store, entries: list[Entry], still_wanted: Callable[[Entry], bool], deleter: Deleter
) -> list[Removal]:
    """`remove_entry` of each entry, in two threads each taking whole interface folders when
    there are many: a rename waits on the journal and its folder's lock, not on Python, and
    two folders' renames go side by side."""
    halves: tuple[list[int], list[int]] = ([], [])
    if len(entries) > PARALLEL_FROM:
        sizes = Counter(entry.interface for entry in entries)
        second = _half_of(sizes)
        for number, entry in enumerate(entries):
            halves[entry.interface in second].append(number)
    else:
        halves[0].extend(range(len(entries)))
    outcomes: list[Removal | None] = [None] * len(entries)
    failed: list[BaseException] = []

    def remove(numbers: list[int]) -> None:
        try:
            for number in numbers:
                entry = entries[number]
                outcomes[number] = remove_entry(store, entry, partial(still_wanted, entry), deleter)
        except BaseException as exc:  # raised in the caller's thread, once both are done
            failed.append(exc)

    if halves[1]:
        import threading  # a large clear only

        worker = threading.Thread(target=remove, args=(halves[1],))
        worker.start()
        remove(halves[0])
        worker.join()
    else:
        remove(halves[0])
    if failed:
        raise failed[0]
    return outcomes  # type: ignore[return-value]


def _half_of(sizes: Counter[str]) -> set[str]:
    """Interfaces holding about half the entries (largest first, each to the lighter side)."""
    sides: tuple[set[str], set[str]] = (set(), set())
    loads = [0, 0]
    for name, size in sizes.most_common():
        side = loads.index(min(loads))
        sides[side].add(name)
        loads[side] += size
    return sides[1]


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
    finally:
        lock.release(unlink=renamed or not os.path.isdir(entry.path))
