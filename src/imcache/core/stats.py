"""`stats`: entries and bytes per interface, and the hits, misses and failures that events.log
counts (since its first line)."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Iterator

from imcache.core.datatype import datatype
from imcache.core.layout import EVENTS
from imcache.core.scan import format_time, scan
from imcache.core.store import Store


@datatype
class Stats:
    entries: int
    bytes: int
    per_interface: dict[str, dict[str, int]]
    events: dict[str, int]
    since: str | None


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
            if len(parts) == 4 and parts[1] in PLURAL:
                with contextlib.suppress(ValueError):
                    yield float(parts[0]), parts[1], parts[2]
