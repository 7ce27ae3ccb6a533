"""Review R3 of the index (issue 17 item 3): what a hostile reviewer found. Each test says what
the cache did before the index (b7243d3) and fails where the index changed it.

Entries are made by real mrcat runs (`make_entry`); hits, clears and listings are real `imcache`
commands, in this process or as subprocesses where a second process is the point.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imcache.core import index as index_module
from imcache.core.index import index_path, read_index
from imcache.core.layout import USED_MARK
from imcache.core.moments import format_time
from imcache.core.scan import read_entry
from tests.cache_entries import (
    MRCAT,
    EntryMaker,
    Made,
    ok,
    ok_json,
    removed_keys,
    use_days_ago,
)
from tests.conftest import as_user_command
from tests.core.test_permissions import LAB, USER_A, USER_B, Run, _as, lab  # noqa: F401
from tests.core.test_permissions import MRCAT as LAB_MRCAT

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def _index(made: Made) -> Path:
    return Path(index_path(str(made.path.parent.parent), MRCAT))


def _where(made: Made) -> tuple[str, str]:
    """The root and interface whose index `made`'s line is in."""
    return str(made.path.parent.parent), MRCAT


def _hit(made: Made, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A hit as a real process (its own lock table: nothing of pytest's holds it)."""
    return subprocess.run(
        [sys.executable, "-m", "imcache", *made.args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# --- 1. a link at a key: "links and stray files are kept" (clear --help) ------------------------


def test_an_entry_moved_away_and_linked_back_is_a_stray_and_its_files_survive_clear(
    make_entry: EntryMaker, tmp_path: Path
) -> None:
    """Before the index, a link named like a key was a stray: `left alone ...: not an imcache
    entry`, never removed. Its index line now makes it an entry: `clear --all` renames the link
    and deletes the files of the folder it points to, outside the cache root."""
    made = make_entry("merged.nii")
    keep = make_entry("other.nii")  # so that the index is not rewritten away
    elsewhere = tmp_path / "scratch" / made.key
    elsewhere.parent.mkdir()
    shutil.move(str(made.path), elsewhere)  # to another disk, say, and linked back
    made.path.symlink_to(elsewhere, target_is_directory=True)
    outputs = sorted(p.name for p in elsewhere.iterdir())
    assert made.out in outputs

    assert [row["key"] for row in ok_json("ls")] == [keep.key]  # before: a stray, not listed
    dry = ok("clear", "--all", "--dry-run")
    assert f"left alone {made.path}: not an imcache entry" in dry.stderr
    ok("clear", "--all")
    assert sorted(p.name for p in elsewhere.iterdir()) == outputs  # nothing outside removed


def test_a_file_named_like_a_key_with_a_line_is_no_entry(make_entry: EntryMaker) -> None:
    """An entry folder replaced by a file of the same name (by hand): before, a stray."""
    made = make_entry("merged.nii")
    make_entry("other.nii")
    shutil.rmtree(made.path)
    made.path.write_bytes(b"not an entry\n")
    assert made.key not in [row["key"] for row in ok_json("ls")]
    assert ok_json("stats")["entries"] == 1


# --- 2. the index file itself: a link, a fifo -------------------------------------------------


def test_a_hit_writes_nothing_through_a_link_in_the_index_folder(
    make_entry: EntryMaker, tmp_path: Path
) -> None:
    """The index folder is the group's in a shared cache (0o3770, not world-writable: the
    kernel's protected_symlinks does not apply): a link planted there as `<interface>.log`
    makes every hit of the victim append to, or create, the file it points to."""
    made = make_entry("merged.nii")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious\n")
    index = _index(made)
    index.unlink()
    index.symlink_to(outside)
    assert _hit(made).returncode == 0
    assert outside.read_bytes() == b"precious\n"
    dangling = tmp_path / "created-by-a-hit.txt"
    index.unlink()
    index.symlink_to(dangling)
    assert _hit(made).returncode == 0
    assert not dangling.exists()


def test_a_fifo_as_the_index_hangs_neither_a_hit_nor_ls(make_entry: EntryMaker) -> None:
    """Before the index, nothing a hit or `ls` did opened a file but the entry's."""
    made = make_entry("merged.nii")
    index = _index(made)
    index.unlink()
    os.mkfifo(index)
    assert _hit(made, timeout=20).returncode == 0  # TimeoutExpired: the hit blocks in open()
    listed = subprocess.run(
        [sys.executable, "-m", "imcache", "ls"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert listed.returncode == 0


# --- 3. clear --max-size chooses by the index, not by the marks ---------------------------------


def test_max_size_removes_the_least_recently_used_as_the_marks_say(
    make_entry: EntryMaker,
) -> None:
    """docs/lifecycle.md: "a clear chooses by last uses read from the marks themselves". A use
    the index never heard of (an older imcache's hit, a mark touched by hand: the documented
    case) shows only in ls, it says. But --max-size orders by the index's last uses: it removes
    the entry used just now and keeps the one unused for 40 days. Before: the older one."""
    stale = make_entry("merged.nii")
    fresh = make_entry("other.nii")
    use_days_ago(stale, 40)
    use_days_ago(fresh, 50)
    os.utime(fresh.path / USED_MARK)  # used just now, as an older imcache's hit notes it
    budget = read_entry(str(fresh.path), MRCAT, fresh.key).bytes + 1
    report = ok_json("clear", "--max-size", str(budget), "--dry-run")
    assert removed_keys(report) == {stale.key}
    report = ok_json("clear", "--max-size", str(budget))
    assert removed_keys(report) == {stale.key}
    assert fresh.path.is_dir()


# --- 4. a rewrite loses a use appended while it renames -----------------------------------------


def test_a_hit_while_a_clear_rewrites_the_index_keeps_its_use(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rewrite_index` copies the lines appended since the scan, then renames: a hit's line
    appended between the copy and the rename is dropped. `ls` then shows the entry's previous
    use (40 days ago, not now), and clear --max-size orders by it (test above)."""
    made = make_entry("merged.nii")
    for _ in range(70):  # lines enough that the clear rewrites the index (INDEX_SLACK)
        use_days_ago(made, 40)
    real = index_module.place_atomic

    def place_with_a_hit_in_between(path: str, write: object, **options: object) -> None:
        def write_then_hit(temporary: str) -> None:
            write(temporary)  # type: ignore[operator]
            assert _hit(made).returncode == 0  # a real hit, in the window before the rename

        real(path, write_then_hit, **options)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(index_module, "place_atomic", place_with_a_hit_in_between)
        ok("clear", "--older-than", "1000d")  # removes nothing; rewrites the index
    mark = read_entry(str(made.path), MRCAT, made.key).last_used_ns
    assert mark > time.time_ns() - 600 * 10**9  # the hit touched the mark
    assert read_index(*_where(made)).uses.get(made.key) == mark


# --- 5. an entry made again at a key by an older imcache: the old life's line is believed ------


def test_an_entry_made_again_without_a_line_shows_its_own_fields(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/lifecycle.md: a line is believed "only for the very mark it names (... an entry made
    again ...)". A scan never looks at the mark: an entry removed by clear and made again by an
    older imcache (no line appended) is listed with its previous life's size, creation and last
    use (another entry's)."""
    made = make_entry("merged.nii")
    make_entry("other.nii")  # keeps the index from being rewritten away
    use_days_ago(made, 40)
    old_line = read_index(*_where(made)).lines[made.key]
    assert removed_keys(ok_json("clear", "--older-than", "30d")) == {made.key}
    # What an older imcache's run leaves: the entry, and no line in the index.
    with monkeypatch.context() as patched:
        patched.setattr(index_module, "note_entry", lambda *args, **kwargs: None)
        ok(*made.args)
    now = read_entry(str(made.path), MRCAT, made.key)
    assert now.created_ns != old_line[0]
    [row] = [row for row in ok_json("ls") if row["key"] == made.key]
    assert row["created"] == format_time(now.created_ns)
    assert row["last_used"] == format_time(now.last_used_ns)


# --- 6. a shared cache: the group's index folder ------------------------------------------------


def test_a_member_cannot_make_another_s_runs_write_through_the_index_folder(
    other_users: Run,
    lab: Path,  # noqa: F811
) -> None:
    """B plants `index/<interface>.log` as a link to a file of A's (the index folder is the
    group's, 0o3770: B may add names there; the kernel's protected_symlinks covers only
    world-writable sticky folders). A's next run and every hit then append to A's file."""
    made = _as(other_users, lab, USER_A, *LAB_MRCAT)
    assert made.returncode == 0, made.stderr
    index = lab / "lab" / "imcache_mem" / "index" / "mrtrix3.MRCat.log"
    assert index.is_file()
    hit = _as(other_users, lab, USER_B, *LAB_MRCAT)  # B's hit appends to A's index
    assert hit.returncode == 0, hit.stderr
    assert len(index.read_bytes().splitlines()) == 2
    cleared = _as(other_users, lab, USER_A, "clear", "--all")
    assert cleared.returncode == 0, cleared.stderr
    assert not index.exists()  # nothing left: no index, the name free for anyone of the group
    victim = lab / f"home-{USER_A}" / "notes.txt"
    victim.write_bytes(b"A's own notes\n")
    os.chown(victim, USER_A, USER_A)
    victim.chmod(0o600)
    planted = subprocess.run(
        [*as_user_command(USER_B, (USER_B, LAB))[:-3], "ln", "-s", str(victim), str(index)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert planted.returncode == 0, planted.stderr  # B may add a name there
    again = _as(other_users, lab, USER_A, *LAB_MRCAT)
    assert again.returncode == 0, again.stderr
    assert _as(other_users, lab, USER_A, *LAB_MRCAT).returncode == 0
    assert victim.read_bytes() == b"A's own notes\n"


# --- 7. a forged use line, and an index that only grows ----------------------------------------


@pytest.mark.parametrize("forged", ["use in 3e9 AD", "made 3e13 BC"])
def test_a_forged_moment_in_a_line_breaks_no_listing(make_entry: EntryMaker, forged: str) -> None:
    """One appended line (any member of a shared cache may append: the index is 0o664) with a
    moment beyond what localtime takes: `ls`, `ls --json`, `show` and `clear --dry-run --json`
    exit 3 (internal error: OSError, OverflowError), and keep doing so, since a clear that
    removes nothing does not rewrite the index. A mark's moments are fixed-width digits; an
    index line's are any integer."""
    from imcache.core.index import entry_line, use_line

    made = make_entry("merged.nii")
    _, size, summary, inode = read_index(*_where(made)).lines[made.key]
    line = {
        "use in 3e9 AD": use_line(made.key, 10**26),
        "made 3e13 BC": entry_line(made.key, inode, -(10**30), size, summary),
    }[forged]
    with _index(made).open("ab") as file:
        file.write(line)
    commands = [("ls",), ("ls", "--json"), ("show", made.key[:8]), ("stats",)]
    commands.append(("clear", "--all", "--dry-run", "--json"))
    for args in commands:
        result = subprocess.run(
            [sys.executable, "-m", "imcache", *args], capture_output=True, text=True, check=False
        )
        assert result.returncode != 3, (args, result.stderr)


def test_a_hit_in_a_private_cache_stats_the_root_no_more_than_before(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`index._append` says `shared()` is asked only where it matters ("a hit's appends need
    no stat of the root"), but an index that is not group-writable (every private cache's:
    0o644 under umask 022) asks it at each append: a hit now stats the root twice (the
    events.log append once, as before, and the index's)."""
    made = make_entry("merged.nii")
    root = str(made.path.parent.parent)
    seen: list[str] = []
    real_stat = os.stat

    def counting(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if os.fspath(path) == root:  # type: ignore[call-overload]
            seen.append(root)
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(os, "stat", counting)
        assert ok_json(*made.args)["cached"] is True
    assert len(seen) <= 1, f"the root stat-ed {len(seen)} times by one hit"


# --- 8. the dry run's lock census ---------------------------------------------------------------


def test_a_dry_run_reports_an_entry_in_use_through_a_linked_lock_file(
    make_entry: EntryMaker, tmp_path: Path
) -> None:
    """A lock file that is a link (to a lock elsewhere on the same disk): the real clear locks
    through it and keeps the entry (`kept ...: in use by another process`), as the dry run
    said before (F_GETLK through the link). The census skips links (`lock_inodes`), so the
    dry run now says `would remove` an entry the real clear will not."""
    made = make_entry("merged.nii")
    target = tmp_path / "elsewhere.lock"
    made.lock.rename(target)
    made.lock.symlink_to(target)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(target)!r}, os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_SH)\n"
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        real_says = "in use by another process"
        dry = subprocess.run(
            [sys.executable, "-m", "imcache", "clear", "--all", "--dry-run"],
            capture_output=True,
            text=True,
            check=True,
        )  # its own process: it holds no lock of the entry's (pytest's run does, until exit)
        assert f"kept {MRCAT} {made.key[:12]}: {real_says}" in dry.stderr
        assert "would remove" not in dry.stdout
    finally:
        holder.kill()
        holder.wait()


def test_a_rewrite_carries_on_a_line_its_scan_saw_only_the_start_of(
    make_entry: EntryMaker,
) -> None:
    """A scan that reads the index while a line is still arriving (another host's append on a
    shared file system, which the module expects to tear) drops that partial line, and counts
    its bytes as read (`Read.size`): the rewrite then carries on from after them, so the whole
    line is in neither, and is lost (here: a run's entry line, published after the scan)."""
    from imcache.core.index import rewrite_index

    made = make_entry("merged.nii")
    index = _index(made)
    whole = index.read_bytes()
    index.write_bytes(whole[:30])  # what the scan sees: the line's first 30 bytes
    seen = read_index(*_where(made))
    with index.open("ab") as file:
        file.write(whole[30:])  # the rest of the same write lands
    assert rewrite_index(*_where(made), [], seen, shared=False)
    assert made.key in read_index(*_where(made)).lines
