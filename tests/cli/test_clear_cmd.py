"""`imcache clear` on the command line: a policy is required, --previous needs a session, what
-q and --json print."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cache_entries import (
    EntryMaker,
    MakeNifti,
    disk_bytes,
    failed_run,
    ok_json,
    present,
    removed_keys,
    use_days_ago,
)
from tests.conftest import imcache

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
    }
    assert printed.getvalue() == json.dumps(expected) + "\n"
