"""Attempts beside an entry: a run's private folder placed onto its key (first one wins), and
which earlier attempts the next run may remove (never a run still going)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from imcache.core.attempts import clear_attempts, place_entry, run_is_live
from imcache.core.hashing import file_digests
from imcache.core.layout import RECORD, USED_MARK, cache_root, run_name
from imcache.core.outputs import stamp_signatures
from imcache.core.store import Store

KEY = "a" * 32


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    return store


def finished(store: Store, name: str, content: bytes, key: str = KEY) -> str:
    """A complete attempt (record written last) in its own folder beside the key."""
    folder = os.path.join(store.root, "pkg.Tool", name)
    os.mkdir(folder)
    Path(folder, "out.txt").write_bytes(content)
    outputs = {"out": {"path": "out.txt", "size": len(content)}}
    stamp_signatures(folder, outputs)
    files = file_digests(folder, skip=frozenset({RECORD, USED_MARK}))
    store.publish(folder, {"layout": 1, "key": key, "outputs": outputs, "files": files})
    return folder


def test_the_first_attempt_placed_is_the_entry_the_second_is_discarded(store: Store) -> None:
    entry = store.entry_dir("pkg.Tool", KEY)
    first = finished(store, f"{KEY}.run-h-1", b"first")
    second = finished(store, f"{KEY}.run-h-2", b"second")
    assert place_entry(first, entry) is True
    assert place_entry(second, entry) is False
    assert Path(entry, "out.txt").read_bytes() == b"first"
    assert not os.path.exists(first) and not os.path.exists(second)
    assert sorted(os.listdir(os.path.dirname(entry))) == [KEY]


@pytest.mark.parametrize("damage", ["output changed", "record of another key", "no record"])
def test_an_entry_that_is_not_intact_gives_way(store: Store, damage: str) -> None:
    entry = store.entry_dir("pkg.Tool", KEY)
    if damage == "record of another key":
        place_entry(finished(store, f"{KEY}.run-h-1", b"old", key="b" * 32), entry)
    elif damage == "no record":
        os.mkdir(entry)
        Path(entry, "half.txt").write_bytes(b"half")
    else:
        place_entry(finished(store, f"{KEY}.run-h-1", b"old"), entry)
        Path(entry, "out.txt").write_bytes(b"new")  # the same size, other bytes
    assert place_entry(finished(store, f"{KEY}.run-h-2", b"fresh"), entry) is True
    assert Path(entry, "out.txt").read_bytes() == b"fresh"
    assert sorted(os.listdir(os.path.dirname(entry))) == [KEY], "what gave way is removed"


def test_replace_puts_an_attempt_over_an_intact_entry(store: Store) -> None:
    entry = store.entry_dir("pkg.Tool", KEY)
    place_entry(finished(store, f"{KEY}.run-h-1", b"old"), entry)
    assert place_entry(finished(store, f"{KEY}.run-h-2", b"new"), entry, replace=True) is True
    assert Path(entry, "out.txt").read_bytes() == b"new"


@pytest.fixture
def live_pid() -> Iterator[int]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_whether_a_run_folder_s_process_lives(live_pid: int) -> None:
    here = os.path.basename(run_name(KEY))  # <key>.run-<this host>-<our pid>
    host = here.split(".run-", 1)[1].rsplit("-", 1)[0]
    assert run_is_live(f"{KEY}.run-{host}-{live_pid}") is True
    assert run_is_live(f"{KEY}.run-{host}-{dead_pid()}") is False
    assert run_is_live(here) is False, "our own pid's folder is a leftover of an earlier process"
    assert run_is_live(f"{KEY}.run-{host}.elsewhere-{live_pid}") is None, "another host's"
    assert run_is_live(f"{KEY}.fetching-{host}-{live_pid}") is True, "a fetch, as a run"
    assert run_is_live(f"{KEY}.fetching-{host}-{dead_pid()}") is False


def test_the_next_run_leaves_runs_going_and_removes_the_rest(store: Store, live_pid: int) -> None:
    entry = store.entry_dir("pkg.Tool", KEY)
    host = os.path.basename(run_name(entry)).split(".run-", 1)[1].rsplit("-", 1)[0]
    names = {
        "live": f"{KEY}.run-{host}-{live_pid}",
        "dead": f"{KEY}.run-{host}-{dead_pid()}",
        "elsewhere": f"{KEY}.run-other.host-{live_pid}",
        "fetching": f"{KEY}.fetching-{host}-{live_pid}",
        "failed": f"{KEY}.failed-20261201T000000-1",
    }
    for name in names.values():
        os.mkdir(os.path.join(os.path.dirname(entry), name))
    place_entry(finished(store, f"{KEY}.run-h-1", b"entry"), entry)
    clear_attempts(entry, entry_too=False)
    left = set(os.listdir(os.path.dirname(entry)))
    going = {names["live"], names["elsewhere"], names["fetching"]}
    assert left == {KEY, *going}
    clear_attempts(entry, entry_too=True)
    assert set(os.listdir(os.path.dirname(entry))) == going


def test_a_run_s_folder_is_beside_its_entry_and_failed_attempts_are_named_by_key(
    store: Store,
) -> None:
    attempt = store.prepare_run("pkg.Tool", KEY)
    assert os.path.dirname(attempt) == os.path.join(store.root, "pkg.Tool")
    assert os.path.basename(attempt).startswith(f"{KEY}.run-")
    kept = os.path.basename(store.keep_failed(attempt))
    assert kept.startswith(f"{KEY}.failed-") and ".run-" not in kept


def test_fetch_and_deletion_folders_are_one_caller_s_alone(tmp_path: Path) -> None:
    """Review of issue 16: two threads of one process (or two hosts alike in name and pid)
    fetching or removing one key never share a folder, and a sweep still reads whose it is."""
    from imcache.core.layout import (
        LEFTOVER_PATTERN,
        deleting_name,
        fetching_name,
        host_name,
        private_owner,
    )

    entry = str(tmp_path / KEY)
    for make in (fetching_name, deleting_name):
        names = {make(entry) for _ in range(50)}
        assert len(names) == 50, make.__name__
        assert all(LEFTOVER_PATTERN.fullmatch(os.path.basename(n)) for n in names)
    fetching = os.path.basename(fetching_name(entry))
    assert private_owner(fetching) == (host_name(), os.getpid())
    assert run_is_live(fetching) is False, "ours by pid, but no thread of ours fills it"
