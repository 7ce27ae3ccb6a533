"""The detached deleter (core/purge.py): it takes the set-aside folders of a large clear, outlives
the clear and its Ctrl-C, and deletes nothing but `.deleting-` folders of the root it was given;
when it cannot be handed them, the clear deletes them itself."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from imcache.core.files import BACKGROUND_OVER, Deleter
from imcache.core.layout import deleting_name
from tests.cache_entries import (
    EntryMaker,
    big_tree,
    clone_entries,
    deleters,
    held_elsewhere,
    release_own_holds,
    set_aside,
    set_aside_trees,
    wait_for_deleters,
    wait_until,
)

KEY = "a" * 32


def tree(path: Path) -> Path:
    """A folder with a file and a subfolder in it."""
    (path / "sub").mkdir(parents=True)
    (path / "file").write_text("kept?")
    (path / "sub" / "file").write_text("kept?")
    return path


def untouched(path: Path) -> bool:
    return (path / "file").is_file() and (path / "sub" / "file").is_file()


def purge(root: Path, payload: bytes) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "imcache.core.purge", str(root)]
    return subprocess.run(command, input=payload, capture_output=True, timeout=60)


def test_the_deleter_deletes_only_deleting_folders_of_its_root(tmp_path: Path) -> None:
    """Its stdin is not trusted: a path elsewhere, an entry, a folder at the wrong depth, a link
    named like a set-aside folder, a way out through `..` or a linked folder are all left."""
    root = tmp_path / "imcache_mem"
    interface = root / "fsl.BET"
    outside = tmp_path / "outside"
    ours = tree(Path(deleting_name(str(interface / KEY))))
    elsewhere = tree(outside / f"{KEY}.deleting-1.aa")
    beyond_link = tree(outside / "fsl.FAST" / f"{KEY}.deleting-1.bb")
    (root / "fsl.FAST").symlink_to(outside / "fsl.FAST")
    (interface / f"{KEY}.deleting-1.cc").symlink_to(elsewhere)
    hostile = [
        elsewhere,
        tree(interface / KEY),  # an entry, not set aside
        tree(root / f"{KEY}.deleting-1.dd"),  # beside the interface folders
        tree(interface / "deeper" / f"{KEY}.deleting-1.ee"),
        tree(interface / f"{KEY}.failed-1-2"),
        beyond_link,
    ]
    paths = [
        str(elsewhere),
        str(interface / KEY),
        str(root / f"{KEY}.deleting-1.dd"),
        str(interface / "deeper" / f"{KEY}.deleting-1.ee"),
        str(interface / f"{KEY}.failed-1-2"),
        str(root / "fsl.FAST" / beyond_link.name),  # its parent is a link out of the root
        f"{interface}/../../outside/{elsewhere.name}",
        f"{interface}//{ours.name}",
        os.path.relpath(ours),
        str(interface / f"{KEY}.deleting-1.cc"),  # a link: taken, then refused as no folder
        str(root),
        "",
        str(ours),
    ]
    payload = b"".join(os.fsencode(path) + b"\0" for path in paths)
    payload += b"\xff\xfe\0" + os.fsencode(str(elsewhere))  # undecodable; cut short (no NUL)

    done = purge(root, payload)
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"taken %d\n" % (len([p for p in paths if p]) + 1)  # looked at after
    wait_until(lambda: not ours.exists() and not deleters(root), "the deleter finished")
    for path in hostile:
        assert untouched(path), path
    assert (interface / f"{KEY}.deleting-1.cc").is_symlink()


def test_a_deleter_given_nothing_starts_none_and_one_given_an_entry_leaves_it(
    tmp_path: Path,
) -> None:
    root = tmp_path / "imcache_mem"
    entry = tree(root / "fsl.BET" / KEY)
    done = purge(root, b"")
    assert (done.returncode, done.stdout) == (0, b"taken 0\n")
    assert deleters(root) == []
    done = purge(root, os.fsencode(str(entry)) + b"\0")
    assert (done.returncode, done.stdout) == (0, b"taken 1\n")
    wait_until(lambda: not deleters(root), "the deleter finished")
    assert untouched(entry)
    assert purge(Path("relative"), b"").returncode == 2


@pytest.mark.parametrize("interpreter", ["/nonexistent/python", "/bin/true", "/bin/false"])
def test_a_failed_hand_over_deletes_in_the_foreground(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interpreter: str
) -> None:
    """No interpreter to start, one that exits without reading, or one that fails: the trees
    are deleted before the block ends, as without a background deleter."""
    root = tmp_path / "imcache_mem"
    trees = set_aside_trees(root, BACKGROUND_OVER + 1)
    monkeypatch.setattr(sys, "executable", interpreter)
    with Deleter(background_root=str(root)) as deleter:
        for path in trees:
            deleter.add(str(path))
    assert deleter.in_background == 0
    assert not any(path.exists() for path in trees)


def test_the_deleter_takes_the_trees_and_deletes_them_after(tmp_path: Path) -> None:
    root = tmp_path / "imcache_mem"
    trees = set_aside_trees(root, BACKGROUND_OVER + 1)
    big_tree(trees[0] / "big")
    with Deleter(background_root=str(root)) as deleter:
        for path in trees:
            deleter.add(str(path))
    assert deleter.in_background == len(trees)
    assert trees[0].exists(), "deleted in the background, not before the block ended"
    wait_until(lambda: not any(p.exists() for p in trees) and not deleters(root), "all deleted")


@pytest.mark.usefixtures("drop_own_holds")
def test_ctrl_c_of_the_clears_process_group_leaves_the_deleter_working(
    make_entry: EntryMaker, cache_root: Path
) -> None:
    """The clear runs in a process group of its own, as a shell runs a command; once it has
    handed its entries over, SIGINT to that group (a Ctrl-C) does not stop their deletion."""
    made = make_entry("merged.nii")
    release_own_holds()  # the clear, in another process, takes this entry too
    clone_entries(made, BACKGROUND_OVER + 100)
    big_tree(made.path / "big")
    script = f'"{sys.executable}" -m imcache clear --all -q; echo handed; exec sleep 60'
    shell = subprocess.Popen(
        ["sh", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert shell.stdout is not None
        assert shell.stdout.readline() == "handed\n"
        assert set_aside(cache_root) and deleters(cache_root), "the deleter is at work"
        os.killpg(shell.pid, signal.SIGINT)
        assert shell.wait(timeout=10) == -signal.SIGINT
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        if shell.stdout is not None:
            shell.stdout.close()
    wait_for_deleters(cache_root)


def _locks_of(trees: list[Path]) -> list[Path]:
    """The lock file of each set-aside tree's key, made as a run leaves one."""
    locks = [tree.parent / f"{tree.name.split('.')[0]}.lock" for tree in trees]
    for lock in locks:
        lock.touch()
    return locks


@pytest.mark.parametrize("interpreter", ["real", "/bin/false"])
def test_lock_files_left_by_a_large_clear_go_after_the_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interpreter: str
) -> None:
    """`Deleter.locks`: the detached deleter, or the foreground when it cannot start one,
    drops each set-aside entry's lock file, but one a run holds or whose key is back."""
    root = tmp_path / "imcache_mem"
    trees = set_aside_trees(root, BACKGROUND_OVER + 3)
    locks = _locks_of(trees)
    (trees[1].parent / trees[1].name.split(".")[0]).mkdir()  # its key has an entry again
    with held_elsewhere(locks[0], fcntl.LOCK_SH, tmp_path / "ready"):  # a run of its key
        if interpreter != "real":  # (the holder started with the real one)
            monkeypatch.setattr(sys, "executable", interpreter)
        with Deleter(background_root=str(root)) as deleter:
            deleter.locks = True
            for path in trees:
                deleter.add(str(path))
        wait_until(lambda: not any(p.exists() for p in trees) and not deleters(root), "deleted")
        assert [lock for lock in locks if lock.exists()] == locks[:2]


def test_lock_files_stay_where_the_clear_dropped_them_itself(tmp_path: Path) -> None:
    """Without `Deleter.locks` (a small clear, `--wait`, the Python API) the deleter leaves
    lock files alone: the clear dropped its own, and any left are a later clear's to judge."""
    root = tmp_path / "imcache_mem"
    trees = set_aside_trees(root, 3)
    locks = _locks_of(trees)
    with Deleter() as deleter:
        for path in trees:
            deleter.add(str(path))
    assert all(lock.exists() for lock in locks) and not any(p.exists() for p in trees)
