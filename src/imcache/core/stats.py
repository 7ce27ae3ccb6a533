"""`stats`: entries and bytes per interface, and the hits, misses and failures that events.log
counts (since its first line); and how `clear` keeps that log bounded (`compact_events`).

Runs append to events.log without a lock (one short O_APPEND write each). `clear` never rewrites
a log a writer may have open: once events.log is over EVENTS_COMPACT_BYTES it sets it aside
(a rename), and a later clear folds the aside log into counts per event and interface
(events-folded.log) once nothing has written to it for ASIDE_SETTLE_NS. A writer that opened
events.log just before it was set aside writes into the aside log, which is read only when such
writes have long stopped: no line is lost, and stats counts the same before and after.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections import Counter
from collections.abc import Iterator

from imcache.core.datatype import datatype
from imcache.core.files import write_atomic
from imcache.core.layout import EVENTS, EVENTS_ASIDE, EVENTS_FOLDED, MEMO_FOLDER
from imcache.core.memo_upkeep import memo_size
from imcache.core.moments import format_time
from imcache.core.scan import scan
from imcache.core.store import Store


@datatype
class Stats:
    entries: int
    bytes: int
    per_interface: dict[str, dict[str, int]]
    events: dict[str, int]
    since: str | None
    events_log_bytes: int = 0  # events.log with what clear set aside and folded
    memo_files: int = 0  # the digest memo (<root>/digests)
    memo_bytes: int = 0


PLURAL = {
    "hit": "hits",
    "miss": "misses",
    "fail": "failures",
    # the remote tier's (core/remote/flow.py): fetched, not there, pushed, failed
    "remote-hit": "remote_hits",
    "remote-miss": "remote_misses",
    "remote-push": "pushes",
    "remote-fail": "remote_failures",
}


def stats(store: Store) -> Stats:
    found = scan(store)
    per: dict[str, dict[str, int]] = {}
    for entry in found.entries:
        row = per.get(entry.interface)  # not setdefault(..., Counter()): a Counter per entry
        if row is None:
            row = per[entry.interface] = Counter()
        row["entries"] += 1
        row["bytes"] += entry.bytes
    events: Counter[str] = Counter()
    first: float | None = None
    for moment, event, interface, times in _events(store):
        first = moment if first is None else min(first, moment)
        events[event] += times
        per.setdefault(interface, Counter())[PLURAL[event]] += times
    memo_files, memo_bytes = memo_size(os.path.join(store.root, MEMO_FOLDER))
    return Stats(
        entries=len(found.entries),
        bytes=sum(entry.bytes for entry in found.entries),
        per_interface={name: dict(row) for name, row in sorted(per.items())},
        events=dict(events),
        since=format_time(int(first * 1e9)) if first is not None else None,
        events_log_bytes=sum(_size(path) for path in _logs(store)),
        memo_files=memo_files,
        memo_bytes=memo_bytes,
    )


def _logs(store: Store) -> list[str]:
    """The log's three parts, oldest first: the counts folded, the log set aside, the log."""
    return [os.path.join(store.root, name) for name in (EVENTS_FOLDED, EVENTS_ASIDE, EVENTS)]


def _events(store: Store) -> Iterator[tuple[float, str, str, int]]:
    folded_path, aside_path, log_path = _logs(store)
    aside = _identity(aside_path)
    # An aside log the folded counts already hold (a clear cut short, or one that could not
    # remove another user's aside log from a sticky root) is not counted twice.
    held = aside is not None and _folded_tag(folded_path) == aside[0]
    for path in (folded_path, log_path) if held else (folded_path, aside_path, log_path):
        yield from _read_events(path)


def _read_events(path: str) -> Iterator[tuple[float, str, str, int]]:
    """(moment, event, interface, how many) per line: a run's line counts once, a folded line
    (`MOMENT EVENT INTERFACE =COUNT`, MOMENT its first) as many times as it says."""
    with (
        contextlib.suppress(FileNotFoundError),
        open(path, encoding="utf-8", errors="replace") as log,
    ):
        for line in log:
            parts = line.split()
            if len(parts) == 4 and parts[1] in PLURAL:
                with contextlib.suppress(ValueError):
                    times = int(parts[3][1:]) if parts[3].startswith("=") else 1
                    yield float(parts[0]), parts[1], parts[2], times


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


# --- keeping events.log bounded (`clear`) -------------------------------------------------------

FOLDED_TAG = "# folded "  # the first line of events-folded.log: which aside log it holds
EVENTS_COMPACT_BYTES = 1 << 20  # a smaller events.log is left as it is (about 15,000 lines)
ASIDE_SETTLE_NS = 60 * 10**9  # an aside log is folded once nothing wrote to it for this long


@datatype
class Compaction:
    """What `compact_events` did, or would do."""

    folded: int  # lines of the log set aside by an earlier clear, now counted
    counts: int  # lines of counts that hold them (one per event and interface)
    set_aside: int  # lines of events.log set aside, to be folded by a later clear
    bytes_before: int
    bytes_after: int


def compact_events(store: Store, dry_run: bool, now_ns: int | None = None) -> Compaction:
    """Fold the log an earlier clear set aside into the counts, once no writer has written to
    it for ASIDE_SETTLE_NS; then set events.log aside if it is over EVENTS_COMPACT_BYTES.

    Best effort: in a shared cache another user's log is theirs to move (a sticky root)."""
    folded_path, aside_path, log_path = _logs(store)
    before = sum(_size(path) for path in (folded_path, aside_path, log_path))
    now = time.time_ns() if now_ns is None else now_ns
    nothing = Compaction(0, 0, 0, before, before)
    with _root_lock(store.root) as locked:
        if not locked:  # a file system without locks on folders: the log stays as it is
            return nothing
        counts: dict[tuple[str, str], list[float]] = {}
        done, _ = _fold(folded_path, counts)
        aside = _identity(aside_path)
        tag = None if aside is None else aside[0]
        settled = aside is not None and now - aside[1] >= ASIDE_SETTLE_NS
        folded = 0
        if settled and tag != done:  # else folded already, by a clear cut short
            _, folded = _fold(aside_path, counts)
        free = aside is None or settled  # the aside log's place, for events.log
        log_size = _size(log_path)
        set_aside = (
            sum(1 for _ in _read_events(log_path))
            if free and log_size > EVENTS_COMPACT_BYTES
            else 0
        )
        payload = "".join(
            [f"{FOLDED_TAG}{tag}\n"]
            + [
                f"{first:.3f} {event} {interface} ={int(times)}\n"
                for (event, interface), (first, times) in sorted(counts.items())
            ]
        ).encode()
        after = (
            (len(payload) if folded else _size(folded_path))
            + (_size(aside_path) if not settled else 0)
            + log_size
        )
        if dry_run:
            return Compaction(folded, len(counts), set_aside, before, after)
        try:
            if folded:
                write_atomic(folded_path, payload)
            if settled:
                os.unlink(aside_path)
            if set_aside:
                os.rename(log_path, aside_path)  # runs append to a new events.log from now on
        except OSError:
            return nothing  # another user's log (or a read-only cache): left to them
    return Compaction(folded, len(counts), set_aside, before, after)


def _fold(path: str, counts: dict[tuple[str, str], list[float]]) -> tuple[str | None, int]:
    """Add a log's lines to `counts` ((event, interface) -> [first moment, times]): the tag of
    the aside log a folded log says it holds, and how many lines were added."""
    lines = 0
    for moment, event, interface, times in _read_events(path):
        row = counts.setdefault((event, interface), [moment, 0])
        row[0], row[1] = min(row[0], moment), row[1] + times
        lines += 1
    return _folded_tag(path), lines


def _folded_tag(path: str) -> str | None:
    """The tag of the aside log that the folded log at `path` says it holds, or None."""
    with contextlib.suppress(OSError), open(path, encoding="utf-8", errors="replace") as log:
        first = log.readline()
        if first.startswith(FOLDED_TAG):
            return first[len(FOLDED_TAG) :].strip()
    return None


def _identity(path: str) -> tuple[str, int] | None:
    """Which file `path` is now (inode, size and last change: a file made after the folded one
    was unlinked may get its inode, and lines of one length its size), and when it last
    changed; None if none."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{info.st_ino}-{info.st_size}-{info.st_ctime_ns}", info.st_ctime_ns


@contextlib.contextmanager
def _root_lock(root: str) -> Iterator[bool]:
    """The cache root locked (flock) against another clear compacting at the same time."""
    try:
        fd = os.open(root, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
