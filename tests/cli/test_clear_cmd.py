"""`imcache clear` on the command line: a policy is required, --previous needs a session, what
-q and --json print."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from imcache.core.files import BACKGROUND_OVER
from tests.cache_entries import (
    EntryMaker,
    Made,
    MakeNifti,
    big_tree,
    clone_entries,
    deleters,
    disk_bytes,
    failed_run,
    ok_json,
    present,
    release_own_holds,
    removed_keys,
    set_aside,
    spawn_log,
    starts,
    use_days_ago,
    wait_for_deleters,
)
from tests.conftest import imcache, run_imcache

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def test_previous_without_a_session(make_entry: EntryMaker, cache_root: Path) -> None:
    entry = make_entry("merged.nii")
    for policy in (["--previous"], ["--previous", "--all"]):
        result = imcache("clear", *policy)
        assert result.exit_code == 1, result.stderr
        assert "imcache session start" in result.stderr
        assert "nothing was removed" in result.stderr
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


def test_a_long_json_report_is_what_the_encoder_prints(tmp_path: Path) -> None:
    """`clear --json` of more than 1,000 entries writes its lists itself: byte for byte what
    json.dumps of the report gives (as `ls --json`)."""
    import contextlib
    import io
    import json

    from imcache.cli.clear_cmd import _render
    from imcache.cli.options import entry_json
    from imcache.core.clear import ClearReport
    from imcache.core.scan import Entry

    folder = tmp_path / 'fsl.\u00e9"x'
    made = [
        Entry(folder.name, f"{i:032x}", str(folder / f"{i:032x}"), i * 10**9, 10**18, i, b"{}")
        for i in range(1500)
    ]
    report = ClearReport(removed=made[:1200], kept=made[1200:1300], in_use=made[1300:])
    report.swept, report.strays = [str(tmp_path / "x")], [str(tmp_path / "\u00e9")]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        _render(report, quiet=False, as_json=True)
    expected = {
        "dry_run": False,
        "removed": [entry_json(e) for e in report.removed],
        "freed_bytes": report.freed,
        "kept": 100,
        "in_use": [entry_json(e) for e in report.in_use],
        "not_yours": [],
        "swept": report.swept,
        "strays": report.strays,
        "events_log": None,
        "memo": {"pruned": 0, "freed_bytes": 0},
        "deleting_in_background": 0,
    }
    assert printed.getvalue() == json.dumps(expected) + "\n"


# --- a large clear deletes its files in the background (core/purge.py) --------------------------

MANY = BACKGROUND_OVER + 150  # entries copied from one made by a run: a large clear


def large_cache(make_entry: EntryMaker) -> Made:
    """MANY entries, none held by this process (a clear in another one may take them all)."""
    made = make_entry("merged.nii")
    release_own_holds()
    clone_entries(made, MANY - 1)
    return made


def listed() -> list[object]:
    done = run_imcache("ls", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_a_large_clear_returns_once_its_entries_are_gone_and_their_files_follow(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    large_cache(make_entry)
    assert len(listed()) == MANY
    done = run_imcache("clear", "--all", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert len(report["removed"]) == MANY
    assert report["deleting_in_background"] == MANY
    assert listed() == []  # out of the cache at once
    wait_for_deleters(cache_root)
    assert sorted(p.name for p in cache_root.glob("*/*") if p.is_dir()) == []


def test_a_large_clear_s_lock_files_go_with_its_entries_files(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    """The clear leaves the lock files of what it set aside to its deleter (a system call
    each, 10,000 in a large clear): once that is done, none is left."""
    large_cache(make_entry)
    assert len(list(cache_root.glob("*/*.lock"))) == MANY
    done = run_imcache("clear", "--all", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleting_in_background"] == MANY
    wait_for_deleters(cache_root)
    assert sorted(cache_root.glob("*/*.lock")) == []


def test_a_caller_capturing_the_clears_output_is_not_held_by_the_deleter(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    """subprocess.run(capture_output=True) of a clear returns while the deleter still works
    (a big tree of it is still there), and the clear leaves no ResourceWarning."""
    made = large_cache(make_entry)
    big_tree(made.path / "big")
    env = {**os.environ, "PYTHONWARNINGS": "always::ResourceWarning"}
    done = run_imcache("clear", "--all", env=env)
    assert done.returncode == 0, done.stderr
    assert set_aside(cache_root), "the clear's streams ended with the clear, not with deletion"
    assert "ResourceWarning" not in done.stderr
    wait_for_deleters(cache_root)


@pytest.mark.parametrize(
    ("words", "says"),
    [([], True), (["-q"], False), (["--wait"], False), (["--wait", "--json"], False)],
    ids=str,
)
def test_wait_deletes_in_the_foreground_and_text_says_when_it_does_not(
    make_entry: EntryMaker, cache_root: Path, words: list[str], says: bool
) -> None:
    large_cache(make_entry)
    done = run_imcache("clear", "--all", *words)
    assert done.returncode == 0, done.stderr
    line = (
        f"imcache: deleting the files of {MANY} entries in the background (--wait waits for them)"
    )
    assert (line in done.stderr.splitlines()) is says
    if "--json" in words:
        assert json.loads(done.stdout)["deleting_in_background"] == 0
    if "--wait" in words:
        assert set_aside(cache_root) == [], "--wait returns when the files are deleted"
        assert deleters(cache_root) == []
    wait_for_deleters(cache_root)
    assert listed() == []


def test_a_dry_run_and_a_small_clear_start_no_deleter(
    make_entry: EntryMaker, tmp_path: Path, cache_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a real clear of more than BACKGROUND_OVER entries starts a process; a small one
    deletes before it returns, as it always did (and its --json says 0)."""
    log = spawn_log(tmp_path, monkeypatch)
    small = [make_entry(f"{name}.nii") for name in "ab"]
    report = ok_json("clear", "--all")
    assert (report["deleting_in_background"], starts(log)) == (0, [])
    assert set_aside(cache_root) == [] and not any(m.path.exists() for m in small)

    large_cache(make_entry)
    assert len(ok_json("clear", "--all", "--dry-run")["removed"]) == MANY
    assert starts(log) == []
    assert ok_json("clear", "--all")["deleting_in_background"] == MANY
    assert starts(log) == [f"-m imcache.core.purge {cache_root}"]
    wait_for_deleters(cache_root)
