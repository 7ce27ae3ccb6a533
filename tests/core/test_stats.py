"""`stats`: entries and bytes per interface, hits, misses and failures from events.log."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cache_entries import MRCAT, EntryMaker, MakeNifti, disk_bytes, failed_run, ok, ok_json

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def test_stats_counts_hits_and_misses(
    make_entry: EntryMaker, make_nifti: MakeNifti, cache_root: Path
) -> None:
    started = int(time.time())
    x = make_entry("x.nii")  # miss
    y = make_entry("y.nii")  # miss
    for args in (x.args, x.args, y.args):
        assert ok_json(*args)["cached"] is True  # 3 hits
    failed_run(make_nifti, "bad.nii")

    data = ok_json("stats")
    assert data["entries"] == 2
    assert data["bytes"] == disk_bytes(x.path) + disk_bytes(y.path)
    assert data["events"] == {"miss": 2, "hit": 3, "fail": 1}
    assert data["per_interface"] == {
        MRCAT: {"entries": 2, "bytes": data["bytes"], "misses": 2, "hits": 3, "failures": 1}
    }
    since = dt.datetime.fromisoformat(data["since"]).timestamp()
    assert started - 1 <= since <= time.time()

    text = ok("stats").stdout
    assert "hits: 3, misses: 2, failures: 1 since " in text
    assert f"{MRCAT}: 2 entries" in text


def _stats_counts() -> tuple[Any, Any, Any]:
    data = ok_json("stats")
    return data["events"], data["per_interface"], data["since"]


@pytest.fixture
def small_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """events.log set aside once over 1,000 bytes, and folded as soon as a later clear runs."""
    from imcache.core import stats

    monkeypatch.setattr(stats, "EVENTS_COMPACT_BYTES", 1000)
    monkeypatch.setattr(stats, "ASIDE_SETTLE_NS", 0)


@pytest.mark.usefixtures("small_log")
def test_clear_folds_events_log_and_stats_counts_the_same(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    """events.log is set aside by one clear and folded into counts by the next: the log stays
    bounded (one line per event and interface), and stats counts what it counted before."""
    x = make_entry("x.nii")
    for _ in range(3):
        ok(*x.args)
    log = cache_root / "events.log"
    with log.open("a") as extra:  # a long history: many lines of two interfaces
        for i in range(500):
            extra.write(f"{1.7e9 + i:.3f} {'hit' if i % 3 else 'miss'} fsl.BET {i:032x}\n")
    before = _stats_counts()
    assert ok_json("stats")["events_log_bytes"] == log.stat().st_size

    report = ok_json("clear", "--older-than", "100d")
    assert report["events_log"]["set_aside"] == 504 and report["events_log"]["folded"] == 0
    assert not log.exists() and (cache_root / "events-aside.log").exists()
    assert _stats_counts() == before
    ok(*x.args)  # a hit after the first clear goes to a new events.log (too small to move)
    report = ok_json("clear", "--older-than", "100d")
    assert (report["events_log"]["folded"], report["events_log"]["set_aside"]) == (504, 0)
    assert log.exists() and not (cache_root / "events-aside.log").exists()
    folded = (cache_root / "events-folded.log").read_text().splitlines()
    assert len(folded) == 1 + 4  # its tag, and hit and miss of two interfaces
    events, per_interface, since = _stats_counts()
    assert events == {**before[0], "hit": before[0]["hit"] + 1}
    assert per_interface[MRCAT]["hits"] == before[1][MRCAT]["hits"] + 1
    assert per_interface["fsl.BET"] == before[1]["fsl.BET"]
    assert since == before[2]
    total = sum(p.stat().st_size for p in cache_root.glob("events*.log"))
    assert ok_json("stats")["events_log_bytes"] == total < 1000  # was 500 lines: 30 kB


@pytest.mark.usefixtures("small_log")
def test_a_dry_run_says_how_it_would_compact_and_changes_nothing(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    make_entry("x.nii")
    log = cache_root / "events.log"
    with log.open("a") as extra:
        extra.write("".join(f"{1.7e9 + i:.3f} hit fsl.BET {i:032x}\n" for i in range(40)))
    ok("clear", "--older-than", "100d")  # sets the log aside
    with log.open("a") as extra:
        extra.write("".join(f"{1.8e9 + i:.3f} miss fsl.BET {i:032x}\n" for i in range(40)))
    log_files = {p.name: p.read_bytes() for p in cache_root.glob("events*.log")}
    done = ok("clear", "--older-than", "100d", "--dry-run")
    assert "would compact events.log: 41 lines folded into 2 counts, 40 set aside" in done.stderr
    assert {p.name: p.read_bytes() for p in cache_root.glob("events*.log")} == log_files
    assert ok_json("clear", "--older-than", "100d", "--dry-run")["events_log"]["folded"] == 41


def test_a_small_or_recently_set_aside_log_is_left_alone(cache_root: Path) -> None:
    """Below EVENTS_COMPACT_BYTES the log stays where it is; an aside log that was written to
    within ASIDE_SETTLE_NS is not folded yet (a late writer may still have it open)."""
    from imcache.core.stats import ASIDE_SETTLE_NS, compact_events, stats
    from imcache.core.store import Store

    store = Store(str(cache_root))
    store.ensure()
    store.log_event("hit", MRCAT, "0" * 32)
    assert compact_events(store, dry_run=False).set_aside == 0
    assert (cache_root / "events.log").exists()
    (cache_root / "events.log").rename(cache_root / "events-aside.log")
    changed = (cache_root / "events-aside.log").stat().st_ctime_ns
    assert compact_events(store, dry_run=False, now_ns=changed + ASIDE_SETTLE_NS - 1).folded == 0
    assert (cache_root / "events-aside.log").exists()
    assert compact_events(store, dry_run=False, now_ns=changed + ASIDE_SETTLE_NS).folded == 1
    assert not (cache_root / "events-aside.log").exists()
    assert stats(store).events == {"hit": 1}


def test_nothing_a_concurrent_writer_appends_is_lost_while_clears_compact(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs append without a lock; compaction only ever renames the live log aside and folds
    an aside log nothing wrote to for a while, so every line written during the compactions is
    counted (folding at once, a writer preempted between its open and its write lost lines)."""
    import threading

    from imcache.core import stats as stats_module
    from imcache.core.stats import compact_events, stats
    from imcache.core.store import Store

    monkeypatch.setattr(stats_module, "EVENTS_COMPACT_BYTES", 0)  # set aside at every clear
    monkeypatch.setattr(stats_module, "ASIDE_SETTLE_NS", 50 * 10**6)

    store = Store(str(cache_root))
    store.ensure()
    written = 4000
    done = threading.Event()

    def write() -> None:
        for i in range(written):
            store.log_event("hit", "fsl.BET", f"{i:032x}")
            if i % 200 == 0:
                time.sleep(0.02)  # a while: aside logs settle and are folded meanwhile
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    compactions = folds = 0
    while not done.is_set():
        folds += bool(compact_events(store, dry_run=False).folded)
        compactions += 1
        time.sleep(0.002)
    writer.join()
    assert compactions > 3, "the writer finished before the clears could race it"
    assert stats(store).events == {"hit": written}
    for _ in range(2):
        time.sleep(0.06)
        compact_events(store, dry_run=False)
    assert folds >= 1 and stats(store).events == {"hit": written}
    assert sum(1 for _ in (cache_root / "events-folded.log").open()) == 2  # tag and one count


def test_a_new_aside_log_on_a_reused_inode_of_the_same_size_is_still_folded(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folded log names the aside log it holds; a later aside log that the file system
    gave the same inode (the old one was unlinked by the fold) and that has the same size (one
    interface's hits are lines of one length) is another log: its lines are counted, not
    dropped as folded already."""
    from imcache.core import stats as stats_module
    from imcache.core.stats import compact_events, stats
    from imcache.core.store import Store

    monkeypatch.setattr(stats_module, "EVENTS_COMPACT_BYTES", 0)
    store = Store(str(cache_root))
    store.ensure()
    log, aside = cache_root / "events.log", cache_root / "events-aside.log"
    later = time.time_ns() + 10**12  # every aside log settled
    inodes = []
    for round_ in range(1, 6):
        log.write_text("".join(f"{1.8e9 + i:.3f} hit {MRCAT} {i:032x}\n" for i in range(50)))
        assert compact_events(store, dry_run=False).set_aside == 50  # no run meanwhile
        inodes.append(aside.stat().st_ino)
        compact_events(store, dry_run=False, now_ns=later)
        assert stats(store).events == {"hit": 50 * round_}
    assert len(set(inodes)) < len(inodes), "the file system gave no inode twice: not tested"


def test_an_aside_log_folded_but_not_removed_is_counted_once(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a sticky shared root another user's aside log cannot be unlinked once its lines are
    folded (and a clear may be cut short there): stats then counts the folded lines, not the
    aside log's as well, and a later clear that can remove it does not fold it again."""
    from imcache.core import stats as stats_module
    from imcache.core.stats import compact_events, stats
    from imcache.core.store import Store

    monkeypatch.setattr(stats_module, "EVENTS_COMPACT_BYTES", 0)
    store = Store(str(cache_root))
    store.ensure()
    for i in range(10):
        store.log_event("hit", MRCAT, f"{i:032x}")
    assert compact_events(store, dry_run=False).set_aside == 10
    later = time.time_ns() + 10**12
    unlink = os.unlink

    def not_yours(path: str) -> None:
        if path.endswith("events-aside.log"):
            raise PermissionError(1, "Operation not permitted", path)
        unlink(path)

    monkeypatch.setattr(os, "unlink", not_yours)
    compact_events(store, dry_run=False, now_ns=later)
    assert (cache_root / "events-aside.log").exists()
    assert stats(store).events == {"hit": 10}
    monkeypatch.setattr(os, "unlink", unlink)
    compact_events(store, dry_run=False, now_ns=later)
    assert not (cache_root / "events-aside.log").exists()
    assert stats(store).events == {"hit": 10}
