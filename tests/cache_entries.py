"""Entries made by real runs, and what the tests of the cache's lifecycle look at them with.

Entries are made by real mrcat runs (`imcache run mrtrix3.MRCat`); their last use is moved back
in time with `Store.touch_used_mark(entry, when_ns=...)`, the very call a hit makes. What is on disk
is read from the disk itself (folders, record files, lock files, byte counts summed here), not
from imcache's own report, except where the report is what is tested. The fixtures `make_entry`
and `drop_own_holds` (tests/conftest.py) hand these out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imcache.core import lock as lock_module
from imcache.core.store import Store
from tests.conftest import imcache, require_tool, run_ok

MRCAT = "mrtrix3.MRCat"
SECOND_NS = 10**9
DAY_NS = 86400 * SECOND_NS
MakeNifti = Callable[..., Path]


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


def entry_maker(make_nifti: MakeNifti) -> EntryMaker:
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
fcntl.lockf(fd, mode)
open(ready, "w").close()
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@contextmanager
def held_elsewhere(lock: Path, mode: int, ready: Path) -> Iterator[None]:
    """Another process holds a POSIX lock on `lock` (as imcache takes them) for the block."""
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


# --- large clears and the detached deleter (core/purge.py) --------------------------------------


def clone_entries(made: Made, n: int) -> None:
    """N more entries beside `made`, copied from it as bench/lifecycle.py builds its big cache
    (new keys, its five interfaces, last uses spread over 90 days): hundreds in a second."""
    from bench.lifecycle import build

    build(made.path.parent.parent, made.path, n, time.time_ns())


def big_tree(folder: Path, files: int = 40_000) -> None:
    """A tree slow to delete and quick to make: `files` hard links to one empty file (its
    deletion takes the detached deleter most of a second on this disk)."""
    folder.mkdir()
    source = folder / "0"
    source.touch()
    for number in range(1, files):
        os.link(source, folder / str(number))


def set_aside_trees(cache_root: Path, n: int) -> list[Path]:
    """N folders renamed aside as a clear does (`<key>.deleting-<pid>.<token>`), a file and a
    folder in each."""
    from imcache.core.layout import deleting_name

    trees = [Path(deleting_name(str(cache_root / "fsl.BET" / f"{i:032x}"))) for i in range(n)]
    for tree in trees:
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "file").write_bytes(b"x")
    return trees


def set_aside(cache_root: Path) -> list[Path]:
    """Entries renamed aside for deletion (`<key>.deleting-...`) and not deleted yet."""
    return list(cache_root.glob("*/*.deleting-*"))


def deleters(cache_root: Path) -> list[int]:
    """Pids of detached deleters (`python -m imcache.core.purge ROOT`) of this root, from /proc."""
    wanted = f"imcache.core.purge\0{cache_root}\0".encode()
    pids = []
    for name in os.listdir("/proc"):
        try:
            command = Path("/proc", name, "cmdline").read_bytes()
        except OSError:  # not a process, or one that has just exited
            continue
        if wanted in command:
            pids.append(int(name))
    return pids


def wait_until(done: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"not within {seconds:.0f} s: {what}"
        time.sleep(0.05)


def wait_for_deleters(cache_root: Path) -> None:
    """Every set-aside entry deleted and every deleter of the root exited, within a minute."""
    wait_until(
        lambda: not set_aside(cache_root) and not deleters(cache_root),
        "the detached deleter finished",
    )


def spawn_log(tmp_path: Path, monkeypatch: Any) -> Path:
    """`sys.executable` made a script that notes each start of an interpreter in the file it
    returns, then starts the real one: which clear started a detached deleter, and how often."""
    log = tmp_path / "interpreter-starts.log"
    script = tmp_path / "python-probe"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{sys.executable}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(script))
    return log


def starts(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def forks_noted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the children `os.fork` makes from now on in this process (the test's)."""
    children: list[int] = []
    real_fork = os.fork

    def noting_fork() -> int:
        pid = real_fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", noting_fork)
    return children
