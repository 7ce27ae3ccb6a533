"""`EntryLock`: POSIX record locks, one descriptor per lock file per process, threads of one
process excluding each other, holds kept until exit, and the test-only switch that turns it off.

Another process is a real one (`other_process`): POSIX locks never exclude their own process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from imcache.core import lock as locks
from imcache.core.lock import NO_LOCKS, EntryLock

PROBE = """
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, (fcntl.LOCK_EX if sys.argv[2] == "ex" else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    print("free")
except OSError as exc:
    print("busy" if exc.errno in (errno.EAGAIN, errno.EACCES) else exc)
"""


def other_process(path: Path, mode: str) -> str:
    """'free' if another process could take the lock now ('ex' or 'sh'), else 'busy'."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), mode], capture_output=True, text=True, timeout=30
    )
    return probe.stdout.strip() or probe.stderr


@pytest.fixture(autouse=True)
def no_leftover_holds() -> None:
    for path in list(locks._HELD):
        locks._drop_held(path)


def test_an_exclusive_lock_is_a_posix_lock_other_processes_see(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    lock = EntryLock(str(path))
    assert lock.acquire(exclusive=True)
    assert other_process(path, "sh") == "busy"
    lock.release()
    assert other_process(path, "ex") == "free"
    assert str(path) not in locks._SLOTS, "the descriptor is closed once nothing holds it"


def test_two_locks_of_one_process_on_one_file_exclude_each_other(tmp_path: Path) -> None:
    """The kernel would grant both (POSIX locks are the process's): the table must not."""
    path = str(tmp_path / "k.lock")
    first = EntryLock(path)
    assert first.acquire(exclusive=True)
    assert not EntryLock(path).try_exclusive()
    got: list[float] = []
    waited: list[bool] = []

    def second() -> None:
        lock = EntryLock(path)
        assert lock.acquire(exclusive=False, on_wait=lambda: waited.append(True))
        got.append(time.monotonic())
        lock.release()

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    assert got == [] and waited == [True], "the second lock waited, and said so once"
    let_go = time.monotonic()
    first.release()
    thread.join(10)
    assert got and got[0] >= let_go


def test_releasing_one_holder_keeps_the_lock_of_the_others(tmp_path: Path) -> None:
    """Closing any descriptor of the file would drop the process's lock: there is one per path,
    closed with the last holder."""
    path = tmp_path / "k.lock"
    one, two = EntryLock(str(path)), EntryLock(str(path))
    assert one.acquire(exclusive=False) and two.acquire(exclusive=False)
    one.release()
    assert other_process(path, "ex") == "busy", "the second shared lock still holds"
    assert other_process(path, "sh") == "free"
    two.release()
    assert other_process(path, "ex") == "free"


def test_a_hold_until_exit_turns_an_exclusive_lock_shared(tmp_path: Path) -> None:
    path = tmp_path / "k.lock"
    lock = EntryLock(str(path))
    assert lock.acquire(exclusive=True)
    lock.hold_until_exit()
    assert str(path) in locks._HELD
    assert other_process(path, "sh") == "free" and other_process(path, "ex") == "busy"
    again = EntryLock(str(path))
    assert again.try_exclusive(), "our own hold never blocks us"
    assert str(path) not in locks._HELD
    again.release()
    assert other_process(path, "ex") == "free"


def test_a_lock_file_that_was_replaced_is_locked_anew(tmp_path: Path) -> None:
    """`clear` unlinks the lock file of an entry it removes: a lock on the old file is none."""
    path = tmp_path / "k.lock"
    path.touch()
    stale = os.open(path, os.O_RDONLY)
    slot = locks._Slot(str(path), stale, writable=False)
    locks._SLOTS[str(path)] = slot  # as if this process had opened it before the unlink
    path.unlink()
    path.touch()
    lock = EntryLock(str(path))
    assert lock.acquire(exclusive=True)
    assert other_process(path, "sh") == "busy", "the lock is on the file the path names"
    lock.release()


def test_a_new_lock_file_is_group_writable_in_a_shared_folder(tmp_path: Path) -> None:
    shared, private = tmp_path / "shared", tmp_path / "private"
    shared.mkdir(mode=0o2770)
    os.chmod(shared, 0o2770)
    private.mkdir(mode=0o700)
    for folder, mode in ((shared, 0o664), (private, 0o644)):
        lock = EntryLock(str(folder / "k.lock"))
        assert lock.acquire(exclusive=True)
        lock.release()
        assert (folder / "k.lock").stat().st_mode & 0o777 == mode


def test_switched_off_no_lock_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NO_LOCKS, "1")
    path = tmp_path / "k.lock"
    one, two = EntryLock(str(path)), EntryLock(str(path))
    assert one.acquire(exclusive=True) and two.try_exclusive()
    one.hold_until_exit()
    assert not path.exists() and locks._HELD == {}
    one.release()
    two.release()


@pytest.mark.parametrize(
    ("failure", "locked"), [("ENOSYS", True), ("ENOLCK", True), ("EBADF", False)]
)
def test_a_mount_without_locks_goes_on_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, locked: bool
) -> None:
    """Lustre without `-o flock` answers ENOSYS: a run is still right (first publisher wins), so
    it goes on; any other failure to lock is one ("cannot lock")."""
    import errno
    import fcntl

    def refuse(fd: int, mode: int) -> None:
        raise OSError(getattr(errno, failure), failure)

    monkeypatch.setattr(fcntl, "lockf", refuse)
    lock = EntryLock(str(tmp_path / "k.lock"))
    assert lock.acquire(exclusive=True) is locked
    lock.release()
    assert str(tmp_path / "k.lock") not in locks._SLOTS


def test_a_forked_child_holds_none_of_its_parent_s_locks(tmp_path: Path) -> None:
    """POSIX locks are not inherited: a child that believed its parent's table would take a
    'shared' lock without asking the kernel, and protect nothing."""
    path = tmp_path / "k.lock"
    held = EntryLock(str(path))
    assert held.acquire(exclusive=False)
    held.hold_until_exit()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its table is empty, and an exclusive lock must wait for ours
        answer = b"empty" if not locks._SLOTS and not locks._HELD else b"inherited"
        answer += b" busy" if not EntryLock(str(path)).try_exclusive() else b" free"
        os.write(write, answer)
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"empty busy"
    os.close(read)
    assert other_process(path, "ex") == "busy", "the parent's hold is intact"


def test_open_here_names_the_lock_files_this_process_has_open(tmp_path: Path) -> None:
    """What a lock census leaves to held_elsewhere: a lock held, held until exit, or being taken."""
    held, kept, taken = (str(tmp_path / f"{name}.lock") for name in ("held", "kept", "taken"))
    assert locks.open_here() == []
    lock = EntryLock(held)
    assert lock.acquire(exclusive=True)
    until_exit = EntryLock(kept)
    assert until_exit.acquire(exclusive=False)
    until_exit.hold_until_exit()
    slot, first = locks._reserve(taken, exclusive=True)
    assert slot is not None and first
    assert sorted(locks.open_here()) == sorted([held, kept, taken])
    locks._unreserve(slot)
    lock.release()
    locks._drop_held(kept)
    assert locks.open_here() == []


def test_held_elsewhere_asks_without_taking_or_making_a_lock(tmp_path: Path) -> None:
    """A dry run's question: another process's lock (shared or exclusive) counts, this
    process's own hold does not (a real clear lets it go), and no lock file is made."""
    import fcntl

    from imcache.core.lock import held_elsewhere
    from tests.cache_entries import held_elsewhere as holding

    path = tmp_path / "k.lock"
    assert held_elsewhere(str(path)) is False
    assert not path.exists()  # asked, not made
    path.write_bytes(b"")
    assert held_elsewhere(str(path)) is False
    for mode in (fcntl.LOCK_SH, fcntl.LOCK_EX):
        with holding(path, mode, tmp_path / f"ready-{mode}"):
            assert held_elsewhere(str(path)) is True
        assert held_elsewhere(str(path)) is False
    mine = EntryLock(str(path))
    assert mine.acquire(exclusive=False)
    mine.hold_until_exit()
    assert held_elsewhere(str(path)) is False  # our own hold
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except OSError:\n    print('busy')\n"
    )
    seen = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True)
    assert seen.stdout == "busy\n", "asking must not drop this process's own lock"
    locks._drop_held(str(path))
