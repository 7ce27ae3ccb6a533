"""`clear`: which entries go (policies), removing them safely, and sweeping what attempts left.

nipype's `clear_previous_runs` and `clear_runs_since`, made to work and taken further: age and size
bounds, dry runs, and safety (held entries, links, stray files, interrupted runs). The bounds come
as moments and byte counts: reading them from what a person typed is the face's job.
"""

from __future__ import annotations

import bisect
import os
import time
from collections import Counter
from collections.abc import Collection, Iterator
from functools import partial
from itertools import compress, repeat
from operator import add, attrgetter, is_, is_not

from imcache.core.datatype import datatype, field
from imcache.core.files import Deleter, remove_tree_quietly
from imcache.core.forked import map_in_two
from imcache.core.index import entry_line, note_gone, rewrite_index, use_line
from imcache.core.inputs import named_digests
from imcache.core.layout import (
    LOCK_SUFFIX,
    MEMO_FOLDER,
    RECORD,
    is_deleting,
    is_failed,
    is_key,
    key_of_leftover,
    lock_name,
    private_owner,
)
from imcache.core.lock import EntryLock, drop_orphan_lock, held_elsewhere
from imcache.core.lock_census import held_in
from imcache.core.memo_upkeep import prune_memo
from imcache.core.removal import Removal, remove_entry, remove_many
from imcache.core.scan import Entry, Scan, lock_inodes, scan, used_now
from imcache.core.stats import Compaction, compact_events
from imcache.core.store import Store

LEFTOVER_AGE_NS = 3600 * 10**9  # interrupted runs are swept after an hour
INDEX_SLACK = 64  # lines of entries gone an index may hold beyond as many as it serves


@datatype
class Policy:
    """Which entries go: any time bound selects; then the least recently used until under max."""

    before_ns: int | None = None  # not used since this moment (the latest session, a date, an age)
    max_bytes: int | None = None
    everything: bool = False
    failed: bool = False  # failed attempts go at once, whatever their age (--failed)

    def selects(self, entry: Entry) -> bool:
        if self.everything:
            return True
        return self.before_ns is not None and entry.last_used_ns < self.before_ns

    def split(self, in_order: list[Entry]) -> tuple[list[Entry], list[Entry]]:
        """The entries `selects` takes and those it leaves, of entries sorted by last use: a
        time bound takes a prefix, found by one bisect (not a call per entry of 100,000)."""
        if self.everything or self.before_ns is None:
            return (in_order, []) if self.everything else ([], in_order)
        at = bisect.bisect_left(in_order, self.before_ns, key=LAST_USE)
        return in_order[:at], in_order[at:]

    def still_selects(self, entry: Entry) -> bool:
        """As `selects`, by the entry's last use as its mark says now (`used_now`)."""
        if self.everything:
            return True
        return self.before_ns is not None and used_now(entry) < self.before_ns


@datatype(frozen=False)
class ClearReport:
    removed: list[Entry] = field(default_factory=list)
    kept: list[Entry] = field(default_factory=list)
    in_use: list[Entry] = field(default_factory=list)
    not_yours: list[Entry] = field(default_factory=list)  # a shared cache: others' entries
    swept: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    dry_run: bool = False
    events: Compaction | None = None  # events.log folded and set aside (`compact_events`)
    memo_pruned: int = 0  # digest memo files no entry needs (`prune_memo`)
    memo_freed: int = 0

    @property
    def freed(self) -> int:
        return sum(entry.bytes for entry in self.removed)

    def keep(self, entry: Entry) -> bool:
        """File an entry no policy chose as kept (False: a filter's way of saying so)."""
        self.kept.append(entry)
        return False

    def note(self, entry: Entry, outcome: Removal) -> None:
        """File the entry under what became of it."""
        self._filed(outcome).append(entry)

    def note_all(self, entries: list[Entry], outcomes: list[Removal]) -> None:
        """`note` of each entry, each list extended in a C loop (`compress`), in order."""
        filed = list(map(self._filed, outcomes))
        for into in (self.removed, self.in_use, self.not_yours, self.kept):
            into.extend(compress(entries, map(is_, filed, repeat(into))))

    def _filed(self, outcome: Removal) -> list[Entry]:
        """The list an outcome is filed in (gone meanwhile counts as kept, as before)."""
        if outcome is Removal.REMOVED:
            return self.removed
        if outcome is Removal.IN_USE:
            return self.in_use
        return self.not_yours if outcome is Removal.NOT_YOURS else self.kept


def clear(
    store: Store,
    policy: Policy,
    dry_run: bool,
    now_ns: int | None = None,
    deleter: Deleter | None = None,
    *,
    fork: bool = False,
) -> ClearReport:
    # Entries vanish at once (renamed aside under their lock); their bytes are deleted once all
    # are chosen, by two threads over their shares (unlinking waits on the disk, not on Python),
    # or by a detached process (`deleter` given one that hands them over: `imcache clear`).
    # `fork`: a large clear may set half of its entries aside in a forked process (a command's
    # process, which runs nothing else: `remove_many`).
    with deleter or Deleter() as deleting:
        return _clear(store, policy, dry_run, now_ns, deleting, fork)


def _clear(
    store: Store, policy: Policy, dry_run: bool, now_ns: int | None, deleter: Deleter, fork: bool
) -> ClearReport:
    found = scan(store, keep=dry_run)  # a real clear changes the folders it lists
    report = ClearReport(strays=found.strays, dry_run=dry_run)
    now = time.time_ns() if now_ns is None else now_ns
    total = sum(map(attrgetter("bytes"), found.entries))
    held = _HeldLocks(store, found.indexes, found.linked_locks) if dry_run else None
    rest = found.entries  # what the loop below files
    if policy.max_bytes is None:  # each entry chosen on its own: side by side
        chosen, kept = policy.split(sorted(found.entries, key=LAST_USE))  # as the report lists
        report.kept.extend(kept)
        if held is None:
            outcomes = remove_many(store, chosen, policy.still_selects, deleter, fork=fork)
        else:
            outcomes = _would_remove_many(held, chosen, policy, fork)
        report.note_all(chosen, outcomes)
        rest = []  # all filed
    queue = _LeastRecentFirst(rest)
    for entry in queue:
        over = policy.max_bytes is not None and total > policy.max_bytes
        if not (policy.selects(entry) or over):
            report.kept.append(entry)
            continue
        if over and not policy.selects(entry) and queue.used_since(entry):
            continue  # chosen for its rank, which its mark says is later: it goes back in line
        if held is not None:
            outcome = _would_remove(held, entry, policy, over)
        else:
            outcome = _remove(store, entry, policy, over, deleter)
        report.note(entry, outcome)
        if outcome is Removal.REMOVED:
            total -= entry.bytes
    for path in found.leftovers:
        at_once = policy.everything or (policy.failed and is_failed(os.path.basename(path)))
        if _sweepable(path, now, at_once) and (dry_run or _sweep(path)):
            report.swept.append(path)
    if not dry_run:
        for path in found.orphan_locks:
            drop_orphan_lock(path)
        rewritten = _tidy_indexes(store, found, report.kept + report.in_use + report.not_yours)
        _note_removed(store, [e for e in report.removed if e.interface not in rewritten])
    _bound_logs(store, report, now)
    return report


def _note_removed(store: Store, removed: list[Entry]) -> None:
    """Each interface's index told which of its entries went (see `index.gone_line`)."""
    by_interface: dict[str, list[str]] = {}
    for entry in removed:
        by_interface.setdefault(entry.interface, []).append(entry.key)
    shared = store.is_shared() if by_interface else False
    for interface, keys in by_interface.items():
        note_gone(store.root, interface, keys, shared=shared)


def _tidy_indexes(store: Store, found: Scan, left: list[Entry]) -> set[str]:
    """Rewrite an interface's index when most of its lines are of entries gone (it stays
    bounded), or when the scan read marks that a line would have served (entries made before
    the index, or whose line was lost): the lines of the entries left, nothing else."""
    counts = Counter(compress(map(INTERFACE, left), _have_lines(left)))
    redo = {  # most lines of entries gone, or marks read that a line would have served
        interface
        for interface, index in found.indexes.items()
        if index.total > 2 * counts[interface] + INDEX_SLACK
        or (index.total and not counts[interface])
        or found.unindexed.get(interface)
    }
    if not redo:  # the common case: no list of the 100,000 entries left is made
        return set()
    by_interface: dict[str, list[Entry]] = {}
    for entry in compress(left, _have_lines(left)):
        if entry.interface in redo:
            by_interface.setdefault(entry.interface, []).append(entry)
    shared = store.is_shared()
    rewritten: set[str] = set()  # their removed entries' lines are gone with the rest
    for interface in sorted(redo):
        index, entries = found.indexes[interface], by_interface.get(interface, [])
        entries.sort(key=attrgetter("key"))
        if rewrite_index(store.root, interface, map(_lines_of, entries), index, shared=shared):
            rewritten.add(interface)
    return rewritten


def _have_lines(entries: list[Entry]) -> Iterator[bool]:
    """Whether each entry has an index line to keep (a mark of ours, with its inputs), in C
    loops (a clear leaves 90,000 entries to count)."""
    summaries = map(is_not, map(attrgetter("summary"), entries), repeat(None))
    return map(all, zip(map(attrgetter("mark_inode"), entries), summaries, strict=True))


def _lines_of(entry: Entry) -> bytes:
    """An entry's index lines: what it is, and its last use unless that is its making."""
    line = entry_line(entry.key, entry.mark_inode, entry.created_ns, entry.bytes, entry.summary)  # type: ignore[arg-type]
    if entry.last_used_ns == entry.created_ns:
        return line
    return line + use_line(entry.key, entry.last_used_ns)


def _bound_logs(store: Store, report: ClearReport, now_ns: int) -> None:
    """events.log and the digest memo stay bounded: what the entries left still need."""
    report.events = compact_events(store, report.dry_run)
    left = report.kept + report.in_use + report.not_yours
    memo = os.path.join(store.root, MEMO_FOLDER)
    report.memo_pruned, report.memo_freed = prune_memo(
        memo, lambda: named_digests(left), now_ns, report.dry_run
    )


class _LeastRecentFirst:
    """The entries by last use, least recent first, as the index says it, and so as the marks
    say it too where an entry chosen for its rank alone (--max-size) is looked at: the index's
    last use is never later than the mark's (`used_now`), so an entry whose mark says later
    goes back in line there, and the one that comes out is the least recent by its mark."""

    def __init__(self, entries: list[Entry]) -> None:
        # A sort in C, stable (ties in the scan's order); a heap's 100,000 pops compared tuples
        # in 0.7 s (cProfile), and an entry goes back in line only after an untold use.
        self.order = sorted(entries, key=LAST_USE)
        self.at = 0

    def __iter__(self) -> Iterator[Entry]:
        while self.at < len(self.order):
            self.at += 1
            yield self.order[self.at - 1]

    def used_since(self, entry: Entry) -> bool:
        """Whether the entry's mark says a later use than the index did (then it is put back,
        after every entry of that moment)."""
        try:
            used = used_now(entry)
        except FileNotFoundError:
            return False  # gone: its removal says so
        if used <= entry.last_used_ns:
            return False
        later = entry._replace(last_used_ns=used)
        bisect.insort_right(self.order, later, lo=self.at, key=LAST_USE)
        return True


LAST_USE, PATH, INTERFACE = attrgetter("last_used_ns"), attrgetter("path"), attrgetter("interface")


class _HeldLocks:
    """Which entries another process holds, as a dry run asks: /proc/locks read once for all of
    them (`lock_census`) where that is trusted, else each lock asked (`held_elsewhere`)."""

    def __init__(self, store: Store, interfaces: Collection[str], links: set[str]) -> None:
        self.store, self.interfaces, self.links = store, interfaces, links
        self.asked = False  # the census is taken when the first entry is asked of
        self.held: set[str] | None = None

    def all(self, entries: list[Entry]) -> list[bool]:
        """Whether each is held, in C loops where the census answers (80,000 entries); none
        asked, no census taken (it may list every folder)."""
        if not entries:
            return []
        paths = list(map(add, map(PATH, entries), repeat(LOCK_SUFFIX)))  # as `Store.lock_path`
        held = self._census()
        if held is None:  # untrusted: each lock asked
            return list(map(held_elsewhere, paths))
        answers = list(map(held.__contains__, paths))
        for number in compress(range(len(paths)), map(self.links.__contains__, paths)):
            answers[number] = held_elsewhere(paths[number])  # a link: its target is asked
        return answers

    def _census(self) -> set[str] | None:
        if not self.asked:
            self.asked = True
            folders = {os.path.join(self.store.root, name) for name in self.interfaces}
            self.held = held_in(
                self.store.root, folders, lambda: lock_inodes(self.store, self.interfaces)
            )
        return self.held


def _would_remove(held: _HeldLocks, entry: Entry, policy: Policy, over: bool) -> Removal:
    """A dry run tells the truth: about last uses, read from the marks as the real clear reads
    them under the lock, and about entries in use: it asks their lock (and takes none). One
    at a time, as --max-size takes them (`_would_remove_many` is the judgement for many)."""
    try:
        if not (over or policy.still_selects(entry)):
            return Removal.KEPT
    except FileNotFoundError:
        return Removal.GONE
    return Removal.IN_USE if held.all([entry])[0] else Removal.REMOVED


def _would_remove_many(
    held: _HeldLocks, entries: list[Entry], policy: Policy, fork: bool
) -> list[Removal]:
    """`_would_remove` of each entry a time bound chose, their marks asked side by side
    (`map_in_two`: 80,000 stat calls), or none asked where every entry goes (`--all`); the
    locks asked of those that would go."""
    if policy.everything or policy.before_ns is None:
        selected: list[bool | None] = [policy.everything] * len(entries)
    else:
        bound = policy.before_ns
        selected = map_in_two(partial(_used_before, bound=bound), entries, fork)
    in_use = iter(held.all(list(compress(entries, selected))))  # None and False: not chosen
    gone, kept, removed, used = Removal.GONE, Removal.KEPT, Removal.REMOVED, Removal.IN_USE
    return [
        gone if chosen is None else kept if not chosen else used if next(in_use) else removed
        for chosen in selected
    ]


def _used_before(entry: Entry, bound: int) -> bool | None:
    """Whether the entry's mark says it was last used before `bound` (None: it is gone)."""
    try:
        return used_now(entry) < bound
    except FileNotFoundError:
        return None


def _remove(store: Store, entry: Entry, policy: Policy, over: bool, deleter: Deleter) -> Removal:
    def still_selected() -> bool:
        # Lock, then look again: a hit may have used the entry since we scanned.
        return over or policy.still_selects(entry)

    return remove_entry(store, entry, still_selected, deleter)


# --- leftovers of attempts ----------------------------------------------------------------------


def _sweepable(path: str, now_ns: int, at_once: bool) -> bool:
    name = os.path.basename(path)
    if is_deleting(name):
        return True  # a removal that was interrupted: finish it
    if private_owner(name) is not None:
        from imcache.core.attempts import run_is_live

        live = run_is_live(name)  # this host's run: its process tells; another host's: its age
        if live is not None:
            return not live
    try:
        age = now_ns - os.lstat(path).st_mtime_ns
    except FileNotFoundError:
        return False
    return at_once or age > LEFTOVER_AGE_NS


def _sweep(path: str) -> bool:
    """Remove an interrupted or failed attempt, unless a run holds its key right now."""
    name = os.path.basename(path)
    key = key_of_leftover(name)
    lock = EntryLock(os.path.join(os.path.dirname(path), lock_name(key)))
    if not lock.try_exclusive():
        return False
    try:
        if is_key(name) and os.path.exists(os.path.join(path, RECORD)):
            return False  # completed meanwhile: an entry, not a leftover
        remove_tree_quietly(path)
        return not os.path.exists(path)
    finally:
        lock.release(unlink=not os.path.isdir(os.path.join(os.path.dirname(path), key)))
