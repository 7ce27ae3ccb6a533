"""Managing the disk that caching uses up: sessions, last use, clear policies, a look inside.

nipype's `clear_previous_runs` and `clear_runs_since`, made to work and taken further: age and size
bounds, dry runs, and safety (held entries, links, stray files, interrupted runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import secrets
import stat
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from imcache.core.datatype import datatype, field
from imcache.core.entry import tree_bytes
from imcache.core.errors import ImcacheError, UsageError
from imcache.core.files import remove_tree_quietly, write_atomic
from imcache.core.layout import (
    EVENTS,
    KEY_PREFIX_PATTERN,
    LEFTOVER_PATTERN,
    RECORD,
    ROOT_FILES,
    SESSION,
    SESSIONS_LOG,
    USED_MARK,
    deleting_name,
    is_deleting,
    is_key,
    is_temporary,
    key_of_leftover,
    key_of_lock,
    lock_name,
)
from imcache.core.lock import EntryLock
from imcache.core.store import Store, cache_errors

LEFTOVER_AGE_NS = 3600 * 10**9  # interrupted runs are swept after an hour


@datatype
class Entry:
    interface: str
    key: str
    path: str
    last_used_ns: int
    created_ns: int
    bytes: int


@datatype(frozen=False)
class Scan:
    entries: list[Entry] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # failed, interrupted, half-deleted
    strays: list[str] = field(default_factory=list)  # not imcache's: reported, never removed
    orphan_locks: list[str] = field(default_factory=list)  # lock files whose entry is gone


def scan(store: Store) -> Scan:
    store.refuse_link()
    found = Scan()
    try:
        names = sorted(os.listdir(store.root))
    except FileNotFoundError:
        return found
    for name in names:
        path = os.path.join(store.root, name)
        if name in ROOT_FILES or is_temporary(name):
            continue
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode):
            _scan_interface(path, name, found)
        else:
            found.strays.append(path)
    return found


def _scan_interface(folder: str, interface: str, found: Scan) -> None:
    with os.scandir(folder) as children:
        for child in sorted(children, key=lambda c: c.name):
            name = child.name
            if child.is_dir(follow_symlinks=False) and is_key(name):
                try:
                    found.entries.append(_entry(child.path, interface, name))
                except FileNotFoundError:
                    if os.path.isdir(child.path):  # else removed by another clear meanwhile
                        found.leftovers.append(child.path)  # no record: running, or interrupted
            elif child.is_dir(follow_symlinks=False) and LEFTOVER_PATTERN.fullmatch(name):
                found.leftovers.append(child.path)
            elif key_of_lock(name) is not None and child.is_file():
                if not os.path.isdir(child.path[:-5]):
                    found.orphan_locks.append(child.path)
            else:
                found.strays.append(child.path)


def _entry(path: str, interface: str, key: str) -> Entry:
    record_info = os.stat(os.path.join(path, RECORD))
    used, size = _read_mark(path)
    if used is None:
        used = record_info.st_mtime_ns  # an entry without a mark: its record's time
    if size is None:
        size = tree_bytes(path)
    return Entry(interface, key, path, used, record_info.st_mtime_ns, size)


def _read_mark(path: str) -> tuple[int | None, int | None]:
    """The mark's mtime is the last use; its text, the size written when the entry was made."""
    try:
        with open(os.path.join(path, USED_MARK), "rb") as mark:
            used = os.fstat(mark.fileno()).st_mtime_ns
            text = mark.read(64)
    except OSError:
        return None, None
    return used, int(text) if text.strip().isdigit() else None


# --- sessions -----------------------------------------------------------------------------------


@datatype
class Session:
    id: str
    started_ns: int

    @property
    def started(self) -> str:
        return format_time(self.started_ns)


def start_session(store: Store, now_ns: int | None = None) -> Session:
    store.ensure()
    session = Session(secrets.token_hex(4), time.time_ns() if now_ns is None else now_ns)
    payload = {"id": session.id, "started_ns": session.started_ns, "started": session.started}
    with cache_errors(store.root):
        write_atomic(os.path.join(store.root, SESSION), json.dumps(payload).encode())
        with open(os.path.join(store.root, SESSIONS_LOG), "a", encoding="utf-8") as log:
            log.write(json.dumps(payload) + "\n")
    return session


def previous_bound(store: Store) -> int:
    """`--previous`: entries not used since the latest session start."""
    session = current_session(store)
    if session is None:
        raise ImcacheError(
            "no session was ever started in this cache, so --previous has nothing to go by",
            "run 'imcache session start' at the start of each pipeline run; nothing was removed",
        )
    return session.started_ns


def current_session(store: Store) -> Session | None:
    try:
        with open(os.path.join(store.root, SESSION), "rb") as handle:
            data = json.loads(handle.read())
        return Session(str(data["id"]), int(data["started_ns"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- clear --------------------------------------------------------------------------------------


@datatype
class Policy:
    """Which entries go: any time bound selects; then the least recently used until under max."""

    before_ns: int | None = None  # not used since this moment (--previous, --since, --older-than)
    max_bytes: int | None = None
    everything: bool = False

    def selects(self, entry: Entry) -> bool:
        if self.everything:
            return True
        return self.before_ns is not None and entry.last_used_ns < self.before_ns


@datatype(frozen=False)
class ClearReport:
    removed: list[Entry] = field(default_factory=list)
    kept: list[Entry] = field(default_factory=list)
    in_use: list[Entry] = field(default_factory=list)
    not_yours: list[Entry] = field(default_factory=list)  # a shared cache: others' entries
    swept: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def freed(self) -> int:
        return sum(entry.bytes for entry in self.removed)


def clear(store: Store, policy: Policy, dry_run: bool, now_ns: int | None = None) -> ClearReport:
    # Entries vanish at once (renamed aside under their lock); their bytes are deleted by a few
    # threads meanwhile, since unlinking many files waits on the disk, not on Python.
    with ThreadPoolExecutor(max_workers=4) as deleter:
        return _clear(store, policy, dry_run, now_ns, deleter)


def _clear(
    store: Store, policy: Policy, dry_run: bool, now_ns: int | None, deleter: ThreadPoolExecutor
) -> ClearReport:
    found = scan(store)
    report = ClearReport(strays=found.strays, dry_run=dry_run)
    now = time.time_ns() if now_ns is None else now_ns
    total = sum(entry.bytes for entry in found.entries)
    for entry in sorted(found.entries, key=lambda e: e.last_used_ns):
        over = policy.max_bytes is not None and total > policy.max_bytes
        if not (policy.selects(entry) or over):
            report.kept.append(entry)
            continue
        if dry_run:
            outcome = _would_remove(store, entry)
        else:
            outcome = _remove(store, entry, policy, over, deleter)
        if outcome == "removed":
            report.removed.append(entry)
            total -= entry.bytes
        elif outcome == "in use":
            report.in_use.append(entry)
        elif outcome == "not yours":
            report.not_yours.append(entry)
        else:
            report.kept.append(entry)
    for path in found.leftovers:
        if _sweepable(path, now, policy.everything) and (dry_run or _sweep(path)):
            report.swept.append(path)
    if not dry_run:
        for path in found.orphan_locks:
            _drop_orphan_lock(path)
    return report


def _drop_orphan_lock(path: str) -> None:
    lock = EntryLock(path)
    if lock.try_exclusive():
        key_dir = os.path.join(os.path.dirname(path), key_of_lock(os.path.basename(path)) or "")
        lock.release(unlink=not os.path.isdir(key_dir))


def _would_remove(store: Store, entry: Entry) -> str:
    """A dry run tells the truth about entries in use: it tries their lock and lets go."""
    lock = EntryLock(store.lock_path(entry.interface, entry.key))
    if not lock.try_exclusive():
        return "in use"
    lock.release()
    return "removed"


def _remove(
    store: Store, entry: Entry, policy: Policy, over: bool, deleter: ThreadPoolExecutor
) -> str:
    def still_selected() -> bool:
        # Lock, then look again: a hit may have used the entry since we scanned.
        return policy.selects(_entry(entry.path, entry.interface, entry.key)) or over

    return remove_entry(store, entry, still_selected, deleter)


def remove_entry(
    store: Store, entry: Entry, still_wanted: Callable[[], bool], deleter: ThreadPoolExecutor
) -> str:
    """Remove an entry nobody uses, if `still_wanted()` under its lock: removed, kept, in use."""
    lock = EntryLock(store.lock_path(entry.interface, entry.key))
    if not lock.try_exclusive():
        return "in use"
    try:
        if not os.path.isdir(entry.path):
            return "gone"
        if not still_wanted():
            return "kept"
        doomed = deleting_name(entry.path)
        try:
            os.rename(entry.path, doomed)  # the entry vanishes at once; the bytes follow
        except PermissionError:
            return "not yours"  # a shared cache: another user's entry is theirs to remove
        deleter.submit(remove_tree_quietly, doomed)
        return "removed"
    except OSError as exc:
        raise ImcacheError(
            f"cannot remove {entry.path}: {exc.strerror}", "check the cache's permissions"
        ) from exc
    finally:
        lock.release(unlink=not os.path.isdir(entry.path))


def _sweepable(path: str, now_ns: int, everything: bool) -> bool:
    if is_deleting(os.path.basename(path)):
        return True  # a removal that was interrupted: finish it
    try:
        age = now_ns - os.lstat(path).st_mtime_ns
    except FileNotFoundError:
        return False
    return everything or age > LEFTOVER_AGE_NS


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


# --- parsing the user's bounds ------------------------------------------------------------------

AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(|k|m|g|t|ki|mi|gi|ti)b?", re.IGNORECASE)
SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
SIZE_UNITS.update({"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40})


def parse_since(text: str) -> int:
    """`2024-05-01` or `2024-05-01T14:30[:SS]`, local time, as epoch nanoseconds."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r} is not a date",
            "use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (local time)",
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a naive time is local time
    return int(moment.timestamp() * 10**9)


def parse_age(text: str) -> int:
    match = AGE.fullmatch(text.strip().lower())
    if match is None:
        raise UsageError(
            f"--older-than {text!r} is not an age",
            "use a number and a unit: s, m, h, d or w (30d, 12h, 1.5w)",
        )
    return int(float(match.group(1)) * AGE_UNITS[match.group(2)] * 10**9)


def parse_size(text: str) -> int:
    match = SIZE.fullmatch(text.strip())
    if match is None:
        raise UsageError(
            f"--max-size {text!r} is not a size",
            "use a number and an optional unit: k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti "
            "(powers of 1024), e.g. 20G or 500Mi",
        )
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


# --- a look inside ------------------------------------------------------------------------------


def format_time(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="seconds")


def read_record(entry: Entry) -> dict[str, Any]:
    try:
        with open(os.path.join(entry.path, RECORD), "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find_entry(store: Store, prefix: str) -> Entry:
    """The one entry whose key starts with `prefix` (at least 4 hex digits)."""
    if not KEY_PREFIX_PATTERN.fullmatch(prefix):
        raise UsageError(f"{prefix!r} is not a key prefix", "give 4 to 32 hex digits of a key")
    matches = [e for e in scan(store).entries if e.key.startswith(prefix)]
    if not matches:
        raise ImcacheError(f"no entry has a key starting with {prefix}", "'imcache ls' lists them")
    if len(matches) > 1:
        raise UsageError(
            f"{len(matches)} entries have keys starting with {prefix}",
            "give more digits of the key",
        )
    return matches[0]


@datatype
class Stats:
    entries: int
    bytes: int
    per_interface: dict[str, dict[str, int]]
    events: dict[str, int]
    since: str | None


PLURAL = {"hit": "hits", "miss": "misses", "fail": "failures"}


def stats(store: Store) -> Stats:
    found = scan(store)
    per: dict[str, dict[str, int]] = {}
    for entry in found.entries:
        row = per.setdefault(entry.interface, Counter())
        row["entries"] += 1
        row["bytes"] += entry.bytes
    events: Counter[str] = Counter()
    first: float | None = None
    for moment, event, interface in _events(store):
        first = moment if first is None else first
        events[event] += 1
        per.setdefault(interface, Counter())[PLURAL[event]] += 1
    return Stats(
        entries=len(found.entries),
        bytes=sum(entry.bytes for entry in found.entries),
        per_interface={name: dict(row) for name, row in sorted(per.items())},
        events=dict(events),
        since=format_time(int(first * 1e9)) if first is not None else None,
    )


def _events(store: Store) -> Iterator[tuple[float, str, str]]:
    with (
        contextlib.suppress(FileNotFoundError),
        open(os.path.join(store.root, EVENTS), encoding="utf-8", errors="replace") as log,
    ):
        for line in log:
            parts = line.split()
            if len(parts) == 4 and parts[1] in ("hit", "miss", "fail"):
                with contextlib.suppress(ValueError):
                    yield float(parts[0]), parts[1], parts[2]
