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
