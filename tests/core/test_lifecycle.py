"""The cache's lifecycle: sessions, last use, `clear` policies, safety, and a look inside.

Entries are made by real mrcat runs (`imcache run mrtrix3.MRCat`); their last use is moved back
in time with `Store.touch_used_mark(entry, when_ns=...)`, the very call a hit makes. What is on disk
is read from the disk itself (folders, record files, lock files, byte counts summed here), not
from imcache's own report, except where the report is what is tested.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imcache.core import lifecycle
from imcache.core import lock as lock_module
from imcache.core.store import Store
from tests.conftest import imcache, require_tool, run_ok

MRCAT = "mrtrix3.MRCat"
SECOND_NS = 10**9
DAY_NS = 86400 * SECOND_NS
MakeNifti = Callable[..., Path]


# --- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Made:
    """One complete entry made by a real run, and the command line that makes (or hits) it."""

    key: str
    path: Path
    out: str
    args: tuple[str, ...]

    @property
    def lock(self) -> Path:
        return self.path.parent / f"{self.key}.lock"


EntryMaker = Callable[..., Made]


ok = run_ok


def ok_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json").stdout)


def present(cache_root: Path) -> set[str]:
    """Keys of complete entries, read from the disk."""
    return {record.parent.name for record in cache_root.glob("*/*/imcache.json")}


def disk_bytes(folder: Path) -> int:
    """Bytes of every file below `folder` (links not followed), counted here, not by imcache."""
    total = 0
    for top, _dirs, files in os.walk(folder):
        for name in files:
            total += os.lstat(os.path.join(top, name)).st_size
    return total


def removed_keys(report: dict[str, Any]) -> set[str]:
    return {row["key"] for row in report["removed"]}


def use_at(made: Made, when_ns: int) -> None:
    Store(str(made.path.parent.parent)).touch_used_mark(str(made.path), when_ns=when_ns)


def use_days_ago(made: Made, days: float) -> None:
    use_at(made, time.time_ns() - int(days * DAY_NS))


def release_own_holds() -> None:
    """In-process runs keep a shared lock on their entries until the process (pytest) exits."""
    for path in list(lock_module._HELD):
        lock_module._drop_held(path)


@pytest.fixture(autouse=True)
def drop_holds_after_test() -> Iterator[None]:
    yield
    release_own_holds()


@pytest.fixture
def make_entry(make_nifti: MakeNifti) -> EntryMaker:
    """A new entry: mrcat of one volume with itself; `shape` sets its size, `out` its key."""
    require_tool("mrcat")

    def make(out: str, shape: tuple[int, ...] = (4, 4, 3), seed: int = 1) -> Made:
        name = f"in-{seed}-{'x'.join(map(str, shape))}.nii"
        if not Path(name).exists():
            make_nifti(name, seed=seed, shape=shape)
        args = ("run", MRCAT, "--in-files", name, name, "--axis", "3", "--out-file", out)
        data = ok_json(*args)
        assert data["cached"] is False, "each made entry must be new"
        made = Made(data["key"], Path(data["work_dir"]), out, args)
        assert (made.path / out).is_file()
        assert made.lock.is_file()
        return made

    return make


def failed_run(make_nifti: MakeNifti, out: str) -> Path:
    """A real failed run (volumes of different sizes): its `<key>.failed-...` folder."""
    require_tool("mrcat")
    if not Path("small.nii").exists():
        make_nifti("small.nii", seed=1, shape=(4, 4, 3))
        make_nifti("big.nii", seed=2, shape=(5, 5, 5))
    args = ("run", MRCAT, "--in-files", "small.nii", "big.nii", "--axis", "3", "--out-file", out)
    result = imcache(*args)
    assert result.exit_code == 1, result.stderr
    kept = result.stderr.split("its logs are kept in ")[1].split()[0]
    assert ".failed-" in kept and Path(kept).is_dir()
    return Path(kept)


HOLDER = """
import fcntl, os, sys
lock, mode, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fd = os.open(lock, os.O_RDWR)
fcntl.flock(fd, mode)
open(ready, "w").close()
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@contextmanager
def held_elsewhere(lock: Path, mode: int, ready: Path) -> Iterator[None]:
    """Another process holds a flock on `lock` for the duration of the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(mode), str(ready)], stdin=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert holder.poll() is None, "the holder exited before it had the lock"
            assert time.monotonic() < deadline, "the holder never got the lock"
            time.sleep(0.01)
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


# --- sessions and time bounds -------------------------------------------------------------------


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
    [found] = lifecycle.scan(store).entries
    assert found.last_used_ns >= started_ns, (
        f"the entry's last use is {(started_ns - found.last_used_ns) / 1e6:.3f} ms "
        "before a session start that preceded its run's end"
    )
    report = lifecycle.clear(store, lifecycle.Policy(before_ns=started_ns), dry_run=False)
    assert report.removed == []


def test_since_today_keeps_all_tomorrow_removes_all(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    made = [make_entry(f"{name}.nii") for name in "abc"]
    keys = {m.key for m in made}
    today = dt.date.today()

    report = ok_json("clear", "--since", today.isoformat())
    assert report["removed"] == [] and report["kept"] == 3
    assert present(cache_root) == keys

    report = ok_json("clear", "--since", (today + dt.timedelta(days=1)).isoformat())
    assert removed_keys(report) == keys
    assert present(cache_root) == set()


@pytest.mark.parametrize(
    ("age", "goes"),
    [
        ("7d", {"old"}),
        ("1w", {"old"}),
        ("168h", {"old"}),
        ("9d", {"old"}),
        ("11d", set()),
        ("1.5w", set()),  # 10.5 days: the entry used 10 days ago stays
        ("2d", {"old", "mid"}),
        ("1h", {"old", "mid"}),
    ],
)
def test_older_than_boundaries(
    make_entry: EntryMaker, cache_root: Path, age: str, goes: set[str]
) -> None:
    made = {name: make_entry(f"{name}.nii") for name in ("old", "mid", "new")}
    use_days_ago(made["old"], 10)
    use_days_ago(made["mid"], 3)

    report = ok_json("clear", "--older-than", age)
    assert removed_keys(report) == {made[name].key for name in goes}
    assert present(cache_root) == {m.key for name, m in made.items() if name not in goes}


def test_since_datetime_boundaries(make_entry: EntryMaker, cache_root: Path) -> None:
    bound = (dt.datetime.now() - dt.timedelta(days=2)).replace(second=0, microsecond=0)
    bound_ns = int(bound.timestamp()) * SECOND_NS  # a naive datetime is local time
    before, at, after = (make_entry(f"{name}.nii") for name in ("before", "at", "after"))
    use_at(before, bound_ns - SECOND_NS)
    use_at(at, bound_ns)  # used at the very moment: used since then
    use_at(after, bound_ns + 60 * SECOND_NS)

    report = ok_json("clear", "--since", bound.strftime("%Y-%m-%dT%H:%M"))
    assert removed_keys(report) == {before.key}
    assert present(cache_root) == {at.key, after.key}

    half_minute = (bound + dt.timedelta(seconds=30)).isoformat(timespec="seconds")
    assert removed_keys(ok_json("clear", "--since", half_minute)) == {at.key}
    assert present(cache_root) == {after.key}


# --- size bound, combinations, dry runs ----------------------------------------------------------

# Entry sizes grow s1 < s2 < s3 < s4; last uses, oldest first: s2, s4, s1, s3.
SIZE_CASES: list[tuple[str, Callable[[dict[str, int]], int], set[str]]] = [
    ("s1+s3", lambda s: s["s1"] + s["s3"], {"s1", "s3"}),
    ("s1+s3+s4-1", lambda s: s["s1"] + s["s3"] + s["s4"] - 1, {"s1", "s3"}),
    ("s1+s3+s4", lambda s: s["s1"] + s["s3"] + s["s4"], {"s1", "s3", "s4"}),
    ("s3", lambda s: s["s3"], {"s3"}),
    ("s3-1", lambda s: s["s3"] - 1, set()),
    ("total", lambda s: sum(s.values()), {"s1", "s2", "s3", "s4"}),
]


@pytest.mark.parametrize(
    ("label", "bound", "survivors"), SIZE_CASES, ids=[c[0] for c in SIZE_CASES]
)
def test_max_size_removes_least_recently_used_until_under(
    make_entry: EntryMaker,
    cache_root: Path,
    label: str,
    bound: Callable[[dict[str, int]], int],
    survivors: set[str],
) -> None:
    shapes = {"s1": (3, 3, 3), "s2": (6, 6, 6), "s3": (9, 9, 9), "s4": (12, 12, 12)}
    made = {name: make_entry(f"{name}.nii", shape=shape) for name, shape in shapes.items()}
    sizes = {name: disk_bytes(m.path) for name, m in made.items()}
    assert sizes["s1"] < sizes["s2"] < sizes["s3"] < sizes["s4"], sizes
    for days, name in zip((8, 6, 4, 2), ("s2", "s4", "s1", "s3"), strict=True):
        use_days_ago(made[name], days)

    report = ok_json("clear", "--max-size", str(bound(sizes)))
    assert present(cache_root) == {made[name].key for name in survivors}, (label, sizes)
    assert removed_keys(report) == {m.key for name, m in made.items() if name not in survivors}
    assert sum(sizes[name] for name in survivors) <= bound(sizes)


@pytest.mark.parametrize(
    ("policy", "survivors"),
    [
        # --since removes a and b; c and d fit under the size bound.
        (["--since", "DAYS_AGO_3", "--max-size", "SIZE_CD"], {"c", "d"}),
        # --since removes a and b; the size bound then takes c, the least recently used left.
        (["--since", "DAYS_AGO_3", "--max-size", "SIZE_D"], {"d"}),
        (["--max-size", "SIZE_D", "--since", "DAYS_AGO_3"], {"d"}),
        # Two time bounds: an entry goes if either selects it.
        (["--since", "DAYS_AGO_7", "--older-than", "4d"], {"c", "d"}),
        (["--older-than", "2d", "--max-size", "SIZE_D"], {"d"}),
    ],
)
def test_policies_combine(
    make_entry: EntryMaker, cache_root: Path, policy: list[str], survivors: set[str]
) -> None:
    made = {name: make_entry(f"{name}.nii") for name in "abcd"}
    for name, days in (("a", 10), ("b", 5), ("c", 1)):
        use_days_ago(made[name], days)
    now = dt.datetime.now()
    values = {
        "DAYS_AGO_3": (now - dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
        "DAYS_AGO_7": (now - dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M"),
        "SIZE_CD": str(disk_bytes(made["c"].path) + disk_bytes(made["d"].path)),
        "SIZE_D": str(disk_bytes(made["d"].path)),
    }
    report = ok_json("clear", *(values.get(word, word) for word in policy))
    assert present(cache_root) == {made[name].key for name in survivors}
    assert removed_keys(report) == {m.key for name, m in made.items() if name not in survivors}


@pytest.mark.parametrize(
    "policy", [["--older-than", "7d"], ["--all"], ["--max-size", "SIZE_NEW"]], ids=str
)
def test_dry_run_removes_nothing_and_reports_what_clear_removes(
    make_entry: EntryMaker, cache_root: Path, policy: list[str]
) -> None:
    old1, old2 = make_entry("old1.nii", shape=(6, 6, 6)), make_entry("old2.nii")
    new = make_entry("new.nii")
    use_days_ago(old1, 10)
    use_days_ago(old2, 9)
    words = [str(disk_bytes(new.path)) if w == "SIZE_NEW" else w for w in policy]
    everything = {old1.key, old2.key, new.key}
    files = {m.key: (m.path / m.out).read_bytes() for m in (old1, old2, new)}

    dry = ok_json("clear", *words, "--dry-run")
    assert dry["dry_run"] is True
    assert removed_keys(dry), "the case must remove something"
    text = ok("clear", *words, "--dry-run")
    assert present(cache_root) == everything
    for made in (old1, old2, new):
        assert (made.path / made.out).read_bytes() == files[made.key]
        assert made.lock.exists()
    lines = [line for line in text.stdout.splitlines() if line.startswith("would remove ")]
    assert {line.split()[3] for line in lines} == {k[:12] for k in removed_keys(dry)}
    assert "would free" in text.stderr

    real = ok_json("clear", *words)
    assert real["dry_run"] is False
    assert removed_keys(real) == removed_keys(dry)
    assert real["freed_bytes"] == dry["freed_bytes"]
    assert present(cache_root) == everything - removed_keys(dry)


# --- safety: held entries, stray files, leftovers ----------------------------------------------


@pytest.mark.parametrize("mode", [fcntl.LOCK_SH, fcntl.LOCK_EX], ids=["shared", "exclusive"])
def test_entry_held_by_another_process_survives(
    make_entry: EntryMaker, cache_root: Path, tmp_path: Path, mode: int
) -> None:
    held, free = make_entry("held.nii"), make_entry("free.nii")
    release_own_holds()  # this process's own hold would block an exclusive holder

    with held_elsewhere(held.lock, mode, tmp_path / "ready"):
        text = imcache("clear", "--all")
        assert text.exit_code == 0, text.stderr
        assert f"kept {MRCAT} {held.key[:12]}: in use by another process" in text.stderr
        assert present(cache_root) == {held.key}
        assert (held.path / held.out).is_file()
        assert not free.path.exists()

        report = ok_json("clear", "--all")
        assert [row["key"] for row in report["in_use"]] == [held.key]
        assert report["removed"] == []
        assert held.lock.exists(), "the lock file of an entry in use stays"

    report = ok_json("clear", "--all")
    assert removed_keys(report) == {held.key}
    assert report["in_use"] == []
    assert not held.path.exists()
    assert not held.lock.exists()


def test_dry_run_does_not_promise_to_remove_a_held_entry(
    make_entry: EntryMaker, cache_root: Path, tmp_path: Path
) -> None:
    held = make_entry("held.nii")
    release_own_holds()
    with held_elsewhere(held.lock, fcntl.LOCK_SH, tmp_path / "ready"):
        dry = ok_json("clear", "--all", "--dry-run")
        real = ok_json("clear", "--all")
    assert removed_keys(real) == set() and present(cache_root) == {held.key}
    assert removed_keys(dry) == removed_keys(real), (
        "--dry-run says it would remove an entry that the real clear keeps (in use)"
    )


def test_stray_files_and_links_are_left_alone(
    make_entry: EntryMaker, cache_root: Path, tmp_path: Path
) -> None:
    entry = make_entry("merged.nii")
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "data.txt").write_text("precious")
    (outside / "sub" / "more.txt").write_text("precious too")
    # A folder outside that even looks like an entry, reached by a link named like a key.
    lookalike = tmp_path / "lookalike"
    lookalike.mkdir()
    (lookalike / "imcache.json").write_text(json.dumps({"layout": 1, "key": "f" * 32}))

    strays = {
        cache_root / "notes.txt": "mine",
        cache_root / MRCAT / "notes.txt": "mine too",
    }
    for path, text in strays.items():
        path.write_text(text)
    link = cache_root / "link"
    link.symlink_to(outside, target_is_directory=True)
    key_link = cache_root / MRCAT / ("f" * 32)
    key_link.symlink_to(lookalike, target_is_directory=True)
    before = {
        p: p.read_bytes() for p in [*outside.rglob("*"), *lookalike.rglob("*")] if p.is_file()
    }

    result = ok("clear", "--all")
    assert not entry.path.exists()
    for path, text in strays.items():
        assert path.read_text() == text
    assert link.is_symlink() and key_link.is_symlink()
    assert {p: p.read_bytes() for p in before} == before
    for path in [*strays, link, key_link]:
        assert f"left alone {path}: not an imcache entry" in result.stderr, result.stderr

    report = ok_json("clear", "--all")
    assert set(report["strays"]) == {str(p) for p in [*strays, link, key_link]}
    assert report["removed"] == []
    assert {p: p.read_bytes() for p in before} == before


def test_entry_holding_a_link_to_outside_is_removed_without_following_it(
    make_entry: EntryMaker, tmp_path: Path
) -> None:
    entry = make_entry("merged.nii")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.txt").write_text("precious")
    (entry.path / "link").symlink_to(outside, target_is_directory=True)
    ok("clear", "--all")
    assert not entry.path.exists()
    assert (outside / "data.txt").read_text() == "precious"


@pytest.mark.parametrize(
    "policy",
    [["--older-than", "30d"], ["--since", "2000-01-01"], ["--max-size", "1T"]],
    ids=str,
)
def test_old_leftovers_are_swept_by_any_clear(
    make_entry: EntryMaker,
    make_nifti: MakeNifti,
    cache_root: Path,
    policy: list[str],
) -> None:
    entry = make_entry("merged.nii")
    old, fresh = failed_run(make_nifti, "old.nii"), failed_run(make_nifti, "fresh.nii")
    two_hours_ago = time.time_ns() - 2 * 3600 * SECOND_NS
    os.utime(old, ns=(two_hours_ago, two_hours_ago))
    interrupted = cache_root / MRCAT / f"{'e' * 32}.deleting-4242"  # an interrupted removal
    interrupted.mkdir()
    (interrupted / "half.nii").write_bytes(b"x" * 100)

    report = ok_json("clear", *policy)
    assert set(report["swept"]) == {str(old), str(interrupted)}
    assert not old.exists() and not interrupted.exists()
    assert fresh.is_dir(), "a fresh failed run is kept for inspection"
    assert present(cache_root) == {entry.key}

    report = ok_json("clear", *policy)
    assert report["swept"] == [] and fresh.is_dir()

    report = ok_json("clear", "--all")
    assert report["swept"] == [str(fresh)]
    assert not fresh.exists()
    assert [p.name for p in (cache_root / MRCAT).iterdir() if p.is_dir()] == []


def test_clear_all_leaves_no_lock_file_without_its_entry(
    make_entry: EntryMaker, make_nifti: MakeNifti, cache_root: Path
) -> None:
    make_entry("merged.nii")
    failed = failed_run(make_nifti, "bad.nii")  # its run made `<key>.lock` too
    interrupted = cache_root / MRCAT / f"{'e' * 32}.deleting-4242"
    interrupted.mkdir()
    report = ok_json("clear", "--all")
    assert set(report["swept"]) == {str(failed), str(interrupted)}
    assert present(cache_root) == set()
    assert sorted(p.name for p in (cache_root / MRCAT).iterdir()) == []


# --- errors ---------------------------------------------------------------------------------------


def test_previous_without_a_session(make_entry: EntryMaker, cache_root: Path) -> None:
    entry = make_entry("merged.nii")
    for policy in (["--previous"], ["--previous", "--all"]):
        result = imcache("clear", *policy)
        assert result.exit_code == 1, result.stderr
        assert "imcache session start" in result.stderr
        assert "nothing was removed" in result.stderr
        assert result.stdout == ""
        assert present(cache_root) == {entry.key}


@pytest.mark.parametrize(
    ("option", "value", "forms"),
    [
        ("--since", "yesterday", "YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
        ("--since", "2024-13-01", "YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
        ("--since", "01/05/2024", "YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
        ("--older-than", "7", "s, m, h, d or w"),
        ("--older-than", "7 days", "s, m, h, d or w"),
        ("--older-than", "-3d", "s, m, h, d or w"),
        ("--older-than", "3y", "s, m, h, d or w"),
        ("--max-size", "lots", "k, M, G, T"),
        ("--max-size", "10X", "k, M, G, T"),
        ("--max-size", "-1G", "k, M, G, T"),
        ("--max-size", "1e9", "k, M, G, T"),
    ],
)
def test_bad_policy_values_are_usage_errors(
    make_entry: EntryMaker, cache_root: Path, option: str, value: str, forms: str
) -> None:
    entry = make_entry("merged.nii")
    result = imcache("clear", option, value, "--all")
    assert result.exit_code == 2, result.stderr
    assert f"{option} {value!r}" in result.stderr
    assert forms in result.stderr
    assert result.stdout == ""
    assert present(cache_root) == {entry.key}


@pytest.mark.parametrize("words", [[], ["--dry-run"], ["--json"], ["-q"]], ids=str)
def test_clear_without_a_policy_is_a_usage_error(
    make_entry: EntryMaker, cache_root: Path, words: list[str]
) -> None:
    entry = make_entry("merged.nii")
    result = imcache("clear", *words)
    assert result.exit_code == 2, result.stderr
    assert "clear needs a policy" in result.stderr
    for option in ("--previous", "--since", "--older-than", "--max-size", "--all"):
        assert option in result.stderr
    assert present(cache_root) == {entry.key}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500", 500),
        ("2k", 2000),
        ("2kB", 2000),
        ("1.5M", 1_500_000),
        ("3G", 3 * 10**9),
        ("1Ki", 1024),
        ("2MiB", 2 * 2**20),
        ("1 Gi", 2**30),
        ("1t", 10**12),
    ],
)
def test_size_units(text: str, expected: int) -> None:
    assert lifecycle.parse_size(text) == expected


# --- a look inside --------------------------------------------------------------------------------


def test_ls_json_lists_entries(make_entry: EntryMaker, cache_root: Path) -> None:
    assert ok_json("ls") == []  # no cache yet
    a, b = make_entry("a.nii"), make_entry("b.nii", shape=(5, 5, 5), seed=2)
    used_ns = (int(time.time()) - 5 * 86400) * SECOND_NS
    use_at(a, used_ns)

    rows = ok_json("ls")
    assert [row["key"] for row in rows] == sorted([a.key, b.key])
    by_key = {row["key"]: row for row in rows}
    for made in (a, b):
        row = by_key[made.key]
        assert {"interface", "key", "bytes", "created", "last_used", "inputs"} <= set(row)
        assert row["interface"] == MRCAT
        assert row["path"] == str(made.path)
        assert row["bytes"] == disk_bytes(made.path)
        created = dt.datetime.fromisoformat(row["created"]).timestamp()
        assert abs(created - time.time()) < 120
        assert row["inputs"]["out_file"] == repr(made.out)
        assert row["inputs"]["in_files"].count(repr(made.args[3])) == 2
    assert dt.datetime.fromisoformat(by_key[a.key]["last_used"]).timestamp() == used_ns / 1e9
    assert by_key[b.key]["last_used"] >= by_key[b.key]["created"]

    assert [row["key"] for row in ok_json("ls", "mrtrix3.*")] == sorted([a.key, b.key])
    assert ok_json("ls", "fsl") == []
    text = ok("ls").stdout.splitlines()
    assert len(text) == 2 and all(MRCAT in line for line in text)


def test_show_json(make_entry: EntryMaker) -> None:
    entry = make_entry("merged.nii")
    data = ok_json("show", entry.key[:8])
    assert data["key"] == entry.key
    assert data["argv"][0] == "mrcat"
    assert data["argv"][-1] == "merged.nii"
    assert "-axis" in data["argv"]
    assert data["outputs"]["out_file"]["path"] == "merged.nii"
    assert data["outputs"]["out_file"]["size"] == (entry.path / "merged.nii").stat().st_size
    assert set(data["logs"]) == {"stdout", "stderr"}
    for log in data["logs"].values():
        assert Path(log).is_file() and Path(log).parent == entry.path
    assert data["inputs"]["out_file"] == "'merged.nii'"
    assert ok_json("show", entry.key)["key"] == entry.key

    text = ok("show", entry.key[:8]).stdout
    assert f"key: {entry.key}" in text
    assert "argv: mrcat " in text


def test_show_bad_prefixes(make_entry: EntryMaker) -> None:
    entry = make_entry("merged.nii")
    unknown = next(p for p in (f"{i:04x}" for i in range(65536)) if not entry.key.startswith(p))
    result = imcache("show", unknown)
    assert result.exit_code == 1
    assert f"no entry has a key starting with {unknown}" in result.stderr
    assert "imcache ls" in result.stderr

    for bad in ("zz12", "abc", "x" * 40):
        result = imcache("show", bad)
        assert result.exit_code == 2, bad
        assert "not a key prefix" in result.stderr
        assert "4 to 32 hex digits" in result.stderr

    # A second entry whose key shares the first 6 digits makes that prefix ambiguous.
    tail = "0" * 26 if not entry.key.endswith("0" * 26) else "1" * 26
    twin = entry.path.with_name(entry.key[:6] + tail)
    shutil.copytree(entry.path, twin)
    result = imcache("show", entry.key[:6])
    assert result.exit_code == 2, result.stderr
    assert f"2 entries have keys starting with {entry.key[:6]}" in result.stderr
    assert "give more digits" in result.stderr
    assert ok_json("show", entry.key[:7])["key"] == entry.key


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


# --- output of clear ------------------------------------------------------------------------------


def test_quiet_clear_prints_nothing(
    make_entry: EntryMaker, make_nifti: MakeNifti, cache_root: Path
) -> None:
    made = [make_entry(f"{name}.nii") for name in "ab"]
    failed_run(make_nifti, "bad.nii")
    (cache_root / "notes.txt").write_text("mine")
    result = imcache("clear", "--all", "-q")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == ""
    assert present(cache_root) == set()
    assert not any(m.path.exists() for m in made)
    assert (cache_root / "notes.txt").exists()


def test_json_freed_bytes_is_the_sum_of_removed_entries(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    made = {
        name: make_entry(f"{name}.nii", shape=shape)
        for name, shape in (("a", (3, 3, 3)), ("b", (7, 7, 7)), ("c", (5, 5, 5)))
    }
    sizes = {name: disk_bytes(m.path) for name, m in made.items()}
    use_days_ago(made["a"], 10)
    use_days_ago(made["b"], 8)

    report = ok_json("clear", "--older-than", "7d")
    assert removed_keys(report) == {made["a"].key, made["b"].key}
    assert report["freed_bytes"] == sizes["a"] + sizes["b"]
    assert report["freed_bytes"] == sum(row["bytes"] for row in report["removed"])
    assert report["kept"] == 1
    assert report["dry_run"] is False
    assert present(cache_root) == {made["c"].key}
