"""Sessions: `session start`, `session status`, and `clear --previous`, which goes by the latest
start (entries made by real mrcat runs: tests/cache_entries.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from imcache.core.clear import Policy, clear
from imcache.core.scan import scan
from imcache.core.store import Store
from tests.cache_entries import EntryMaker, ok, ok_json, present, removed_keys

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def test_previous_keeps_what_the_latest_session_used(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    a, b, c, d = (make_entry(f"{name}.nii") for name in "abcd")
    assert ok("session", "start").stdout.startswith("session ")

    hit = ok_json(*a.args)  # used again through a hit
    assert hit["cached"] is True and hit["key"] == a.key
    e = make_entry("e.nii")  # used through a new run
    status = ok_json("session", "status")
    assert (status["used"], status["not_used"]) == (2, 3), status

    report = ok_json("clear", "--previous")
    assert removed_keys(report) == {b.key, c.key, d.key}
    assert present(cache_root) == {a.key, e.key}
    for gone in (b, c, d):
        assert not gone.path.exists()
        assert not gone.lock.exists(), "a removed entry's lock file goes with it"
    for kept in (a, e):
        assert (kept.path / kept.out).is_file()
        assert kept.lock.is_file()

    # Only the latest session counts: a new one, and nothing used since, removes the rest.
    ok("session", "start")
    assert removed_keys(ok_json("clear", "--previous")) == {a.key, e.key}
    assert present(cache_root) == set()


def test_entry_published_after_session_start_counts_as_used(cache_root: Path) -> None:
    """A run that ends after `session start` was used in that session, however soon after.

    A hit's last use is `time.time_ns()` (`touch_used_mark`), and so is a session's start; a new
    entry's is the mtime the kernel gives its use mark when `publish` creates it, which can lag
    that clock (coarse file times, up to a timer tick).
    """
    store = Store(str(cache_root))
    entry = store.prepare_entry("pkg.Tool", "a" * 32)
    started_ns = time.time_ns()  # a session starts here, then the run ends
    store.publish(entry, {"layout": 1, "key": "a" * 32})
    [found] = scan(store).entries
    assert found.last_used_ns >= started_ns, (
        f"the entry's last use is {(started_ns - found.last_used_ns) / 1e6:.3f} ms "
        "before a session start that preceded its run's end"
    )
    report = clear(store, Policy(before_ns=started_ns), dry_run=False)
    assert report.removed == []
