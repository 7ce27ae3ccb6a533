"""`clear`: time and size bounds, how they combine, dry runs, and safety (held entries, stray
files, links, leftovers of attempts). Entries are made by real mrcat runs (tests/cache_entries.py);
what is on disk is read from the disk itself."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cache_entries import (
    MRCAT,
    SECOND_NS,
    EntryMaker,
    MakeNifti,
    disk_bytes,
    failed_run,
    held_elsewhere,
    ok,
    ok_json,
    present,
    release_own_holds,
    removed_keys,
    use_at,
    use_days_ago,
)
from tests.conftest import imcache

pytestmark = pytest.mark.usefixtures("drop_own_holds")


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


def test_a_dry_run_that_would_remove_nothing_asks_no_lock(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock census may list every folder: taken only for entries that would go."""
    from imcache.core import clear as clear_module

    make_entry("merged.nii")
    censuses: list[str] = []
    real = clear_module.held_in
    monkeypatch.setattr(
        clear_module, "held_in", lambda root, *rest: censuses.append(root) or real(root, *rest)
    )
    assert ok_json("clear", "--older-than", "30d", "--dry-run")["removed"] == []
    assert censuses == []
    assert len(ok_json("clear", "--all", "--dry-run")["removed"]) == 1
    assert len(censuses) == 1


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


def test_clear_failed_removes_failed_attempts_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 8: failed attempts are swept after an hour; --failed removes them now,
    --dry-run only names them, and entries stay."""
    from imcache.core.layout import cache_root as root_of
    from imcache.core.store import Store

    store = Store(root_of(str(tmp_path / "base")))
    store.ensure("pkg.Tool")
    attempt = Path(store.keep_failed(store.prepare_entry("pkg.Tool", "e" * 32)))
    entry = store.prepare_entry("pkg.Tool", "d" * 32)
    store.publish(entry, {"layout": 1, "key": "d" * 32, "interface": "pkg.Tool"})
    assert ok_json("clear", "--older-than", "1d")["swept"] == [], "young: kept for an hour"
    dry = ok_json("clear", "--failed", "--dry-run")
    assert dry["swept"] == [str(attempt)] and attempt.is_dir()
    done = ok_json("clear", "--failed")
    assert done["swept"] == [str(attempt)] and done["removed"] == []
    assert not attempt.exists() and Path(entry).is_dir()


def test_run_folders_are_swept_once_their_run_is_over(tmp_path: Path) -> None:
    """Issue 16: a run fills `<key>.run-<host>-<pid>`. This host's is swept once its process is
    gone (however young), never while it lives (even by --all); another host's, which we cannot
    ask, by its age, as any leftover."""
    import subprocess
    import sys

    from imcache.core.layout import cache_root as root_of
    from imcache.core.layout import host_name
    from imcache.core.store import Store

    store = Store(root_of(str(tmp_path / "base")))
    store.ensure("pkg.Tool")
    folder = Path(store.root, "pkg.Tool")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "dead": f"{'a' * 32}.run-{host_name()}-{dead.pid}",
            "live": f"{'b' * 32}.run-{host_name()}-{live.pid}",
            "elsewhere young": f"{'c' * 32}.run-other.host-{live.pid}",
            "elsewhere old": f"{'d' * 32}.run-other.host-{live.pid}",
        }
        for name in names.values():
            (folder / name).mkdir()
            (folder / name / "half.nii").write_bytes(b"x")
        two_hours_ago = time.time_ns() - 2 * 3600 * SECOND_NS
        os.utime(folder / names["elsewhere old"], ns=(two_hours_ago, two_hours_ago))
        report = ok_json("clear", "--older-than", "30d")
        swept = {str(folder / names["dead"]), str(folder / names["elsewhere old"])}
        assert set(report["swept"]) == swept
        report = ok_json("clear", "--all")
        assert report["swept"] == [str(folder / names["elsewhere young"])]
        assert [p.name for p in folder.iterdir()] == [names["live"]]
    finally:
        live.kill()
        live.wait()
