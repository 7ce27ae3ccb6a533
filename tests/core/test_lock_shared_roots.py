"""Issue 16 part 1, found in review: a lock file a member may only read (another user's, made
0644 by an older imcache) must not let that member's `clear` remove an entry in use."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

from tests.core.test_permissions import MRCAT, USER_A, USER_B, Run, _as, lab  # noqa: F401


@pytest.mark.parametrize("readable_only", [False, True])
def test_a_member_s_clear_leaves_an_entry_in_use_whatever_its_lock_file_s_mode(
    other_users: Run,
    lab: Path,  # noqa: F811
    readable_only: bool,
) -> None:
    ran = _as(other_users, lab, USER_A, *MRCAT)
    assert ran.returncode == 0, ran.stderr
    entry = Path(json.loads(ran.stdout)["outputs"]["out_file"]).parent
    lock = entry.parent / f"{entry.name}.lock"
    if readable_only:  # B's, as an older imcache made it: A may only read it
        os.chown(lock, USER_B, USER_B)
        lock.chmod(0o644)
    fd = os.open(lock, os.O_RDONLY)  # another process uses the entry: a hit's shared lock
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        cleared = _as(other_users, lab, USER_A, "clear", "--all")
        assert cleared.returncode == 0, cleared.stderr
        assert entry.is_dir(), f"removed while in use: {cleared.stderr}"
    finally:
        os.close(fd)


def test_a_member_s_force_leaves_an_entry_in_use_whatever_its_lock_file_s_mode(
    other_users: Run,
    lab: Path,  # noqa: F811
) -> None:
    """--force replaces the entry under the run's exclusive lock: one only shared (a lock file
    A may only read) must not let it pull the entry away from a process using it."""
    ran = _as(other_users, lab, USER_A, *MRCAT)
    assert ran.returncode == 0, ran.stderr
    out = Path(json.loads(ran.stdout)["outputs"]["out_file"])
    lock = out.parent.parent / f"{out.parent.name}.lock"
    os.chown(lock, USER_B, USER_B)
    lock.chmod(0o644)
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH)
        record = (out.parent / "imcache.json").read_text()
        forced = _as(other_users, lab, USER_A, *MRCAT, "--force")
        assert forced.returncode == 1 and "is not writable for you" in forced.stderr, forced
        assert (out.parent / "imcache.json").read_text() == record, "replaced while in use"
    finally:
        os.close(fd)
