"""`held_among`: one read of /proc/locks answers for many lock files as `held_elsewhere` would for
each, and declines (None) wherever that list could be incomplete or its numbers mean otherwise.

Holders are real processes taking real locks: POSIX locks never exclude their own process."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from imcache.core import lock as locks
from imcache.core import lock_census as census
from imcache.core.layout import lock_name
from imcache.core.lock import NO_LOCKS, EntryLock, held_elsewhere
from imcache.core.lock_census import LockLine, file_system_of, held_among, parse_line

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc/locks is Linux's")

HOLDER = """
import fcntl, os, struct, sys
from imcache.core.lock import EntryLock
held = []
for spec in sys.argv[1:]:
    how, path = spec.split("=", 1)
    if how in ("shared", "exclusive"):
        lock = EntryLock(path)
        assert lock.acquire(exclusive=how == "exclusive")
        held.append(lock)
        continue
    fd = os.open(path, os.O_RDWR)
    held.append(fd)
    if how == "flock":
        fcntl.flock(fd, fcntl.LOCK_EX)
    elif how == "ofd":
        whole = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, whole)
    elif how == "range":
        fcntl.lockf(fd, fcntl.LOCK_SH, 10, 5)  # bytes 5..14 only: held_elsewhere asks the whole
print("ready", flush=True)
sys.stdin.read()  # hold until the test closes our stdin
"""
WAITER = """
import fcntl, os, sys
fcntl.lockf(os.open(sys.argv[1], os.O_RDWR), fcntl.LOCK_EX)  # blocks: the test holds it
"""


@pytest.fixture(autouse=True)
def no_leftover_holds() -> Iterator[None]:
    yield
    for path in list(locks._HELD):
        locks._drop_held(path)


@contextmanager
def holding(*specs: str) -> Iterator[None]:
    """Another process holds the locks `how=path` (shared, exclusive, flock, ofd, range)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, *specs], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline() == b"ready\n", "the holder never got its locks"
        yield
    finally:
        holder.stdin.close()
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


def lock_files(
    root: Path, count: int, folders: tuple[str, ...] = ("a.Tool", "b.Tool")
) -> list[str]:
    paths = []
    for index in range(count):
        folder = root / folders[index % len(folders)]
        folder.mkdir(exist_ok=True)
        path = folder / lock_name(f"{index:032x}")
        path.write_bytes(b"")
        paths.append(str(path))
    return paths


def listed(root: Path) -> dict[str, int]:
    """Lock files and their inodes as a scan lists them (d_ino, no stat)."""
    found = {}
    for folder in os.scandir(root):
        if folder.is_dir():
            found.update({entry.path: entry.inode() for entry in os.scandir(folder.path)})
    return found


def asked_one_by_one(paths: dict[str, int]) -> set[str]:
    return {path for path in paths if held_elsewhere(path)}


def test_the_census_answers_as_held_elsewhere_for_every_kind_of_holder(tmp_path: Path) -> None:
    paths = lock_files(tmp_path, 300)
    kinds = ["shared", "exclusive", "flock", "range"] + ["ofd"] * hasattr(fcntl, "F_OFD_SETLK")
    specs = [
        f"{kind}={path}" for i, kind in enumerate(kinds) for path in paths[i * 10 : i * 10 + 10]
    ]
    ours = EntryLock(paths[100])  # this process's own hold: not held elsewhere
    assert ours.acquire(exclusive=False)
    ours.hold_until_exit()
    thread_held = EntryLock(paths[101])  # as another thread of ours holds it: held
    assert thread_held.acquire(exclusive=True)
    being_taken, first = locks._reserve(paths[102], exclusive=True)  # no kernel lock yet
    assert being_taken is not None and first
    try:
        with holding(*specs):
            found = listed(tmp_path)
            assert len(found) == 300
            one_by_one = asked_one_by_one(found)
            assert held_among(str(tmp_path), found) == one_by_one
        flocked = set(paths[20:30])  # F_GETLK sees no flock, and a real clear's lockf ignores it
        others = set(paths[: 10 * len(kinds)]) - flocked
        assert one_by_one == others | {paths[101], paths[102]}, "what both must say"
        assert held_among(str(tmp_path), found) == {paths[101], paths[102]}, "let go: not held"
    finally:
        locks._unreserve(being_taken)
        thread_held.release()


def test_a_waiter_holds_nothing(tmp_path: Path) -> None:
    """A `->` line is a process waiting for our hold: the path is ours (not held elsewhere)."""
    path = lock_files(tmp_path, 3)[0]
    ours = EntryLock(path)
    assert ours.acquire(exclusive=False)
    ours.hold_until_exit()
    waiter = subprocess.Popen([sys.executable, "-c", WAITER, path])
    try:
        deadline = time.monotonic() + 20
        while " -> " not in Path(census.PROC_LOCKS).read_text():
            assert waiter.poll() is None and time.monotonic() < deadline, "the waiter never waited"
            time.sleep(0.01)
        found = listed(tmp_path)
        assert held_among(str(tmp_path), found) == asked_one_by_one(found) == set()
    finally:
        waiter.kill()
        waiter.wait()


def test_lock_files_named_from_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = lock_files(tmp_path, 3, folders=("a.Tool",))
    monkeypatch.chdir(tmp_path / "a.Tool")
    here = {entry.name: entry.inode() for entry in os.scandir()}
    with holding(f"exclusive={paths[1]}"):
        assert held_among(".", here) == {os.path.basename(paths[1])} == asked_one_by_one(here)


@pytest.mark.parametrize(
    "kind", ["nfs4", "nfs", "cifs", "smb3", "lustre", "gpfs", "ceph", "fuse.sshfs", "9p", "overlay"]
)
def test_a_file_system_shared_with_other_hosts_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    paths = lock_files(tmp_path, 4)
    mounts = census.read_mountinfo() + f"99 1 0:99 / {tmp_path.resolve()} rw - {kind} srv:/x rw\n"
    monkeypatch.setattr(census, "read_mountinfo", lambda: mounts)
    with holding(f"exclusive={paths[0]}"):
        assert held_among(str(tmp_path), listed(tmp_path)) is None


def test_a_folder_of_lock_files_on_another_mount_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The root is local, one interface folder below it is NFS: its holders may be elsewhere."""
    lock_files(tmp_path, 4)
    nfs = tmp_path.resolve() / "b.Tool"
    mounts = census.read_mountinfo() + f"99 1 0:99 / {nfs} rw - nfs4 srv:/x rw\n"
    monkeypatch.setattr(census, "read_mountinfo", lambda: mounts)
    assert held_among(str(tmp_path), listed(tmp_path)) is None
    monkeypatch.setattr(census, "read_mountinfo", lambda: mounts.replace(str(nfs), f"{nfs}x"))
    assert held_among(str(tmp_path), listed(tmp_path)) == set(), "a sibling's mount is not it"


def test_lock_files_on_two_devices_are_not_trusted(tmp_path: Path) -> None:
    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("no tmpfs at /dev/shm to be a second device")
    lock_files(tmp_path, 2)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        lock_files(Path(other), 2)
        both = listed(tmp_path) | listed(Path(other))
        assert held_among(str(tmp_path), listed(tmp_path)) == set()
        assert held_among(str(tmp_path), both) is None


def test_a_failed_self_test_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lock_files(tmp_path, 4)
    found = listed(tmp_path)
    real = census.read_proc_locks
    me = f" {os.getpid()} "

    def without_ours() -> str:
        return "".join(line for line in real().splitlines(True) if me not in line)

    def on_another_device() -> str:
        return real().replace(f"{me}{os.major(os.stat(tmp_path).st_dev):02x}:", f"{me}ff:")

    def in_another_pid_namespace() -> str:
        return real().replace(me, " 1 ")  # our flocks would show with another number

    def unreadable() -> str:
        raise PermissionError(13, "Permission denied", census.PROC_LOCKS)

    def not_understood() -> str:
        return real() + "9: UNKNOWN UNKNOWN  UNLCK 1 fd:00:1 0 EOF\n"

    assert held_among(str(tmp_path), found) == set()
    for reader in (
        without_ours,
        on_another_device,
        in_another_pid_namespace,
        unreadable,
        not_understood,
    ):
        monkeypatch.setattr(census, "read_proc_locks", reader)
        assert held_among(str(tmp_path), found) is None, reader.__name__
    monkeypatch.setattr(census, "read_proc_locks", real)
    monkeypatch.setattr(census, "_listed_inode", lambda folder: os.stat(folder).st_ino + 1)
    assert held_among(str(tmp_path), found) is None, "a listing that numbers otherwise"


def test_a_lock_on_the_same_inode_of_another_device_is_not_ours_to_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = lock_files(tmp_path, 2)
    found = listed(tmp_path)
    real = census.read_proc_locks
    device = os.stat(tmp_path).st_dev
    here = f"{os.major(device):02x}:{os.minor(device):02x}"
    elsewhere = f"{os.major(device) + 1:02x}:{os.minor(device):02x}"
    for where, held in ((elsewhere, set()), (here, {paths[0]})):
        line = f"9: POSIX  ADVISORY  WRITE 1 {where}:{found[paths[0]]} 0 EOF\n"
        monkeypatch.setattr(census, "read_proc_locks", lambda line=line: real() + line)
        assert held_among(str(tmp_path), found) == held, where


def test_locks_switched_off_hold_nothing_and_other_systems_are_asked_per_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = lock_files(tmp_path, 2)
    with holding(f"exclusive={paths[0]}"):
        assert held_among(str(tmp_path), listed(tmp_path)) == {paths[0]}
        monkeypatch.setenv(NO_LOCKS, "1")
        assert (
            held_among(str(tmp_path), listed(tmp_path))
            == set()
            == asked_one_by_one(listed(tmp_path))
        )
        monkeypatch.delenv(NO_LOCKS)
        monkeypatch.setattr(sys, "platform", "darwin")
        assert held_among(str(tmp_path), listed(tmp_path)) is None


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 27 0:40 / /work rw,relatime shared:5 master:2 - xfs /dev/vdb rw
41 27 0:41 / /work/nfs rw - nfs4 srv:/x rw
42 41 0:42 / /work/nfs rw - tmpfs tmpfs rw
43 27 0:43 / /work/my\\040cache rw - nfs srv:/y rw
"""


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "ext4"),
        ("/home/me/cache", "ext4"),
        ("/work", "xfs"),
        ("/work/a/b", "xfs"),
        ("/workspace/a", "ext4"),  # a prefix of the name, not of the path
        ("/work/nfs/a", "tmpfs"),  # the later mount on one point covers the earlier
        ("/work/my cache/a", "nfs"),  # a space in a mount point is written \040
        ("/work/my\\040cache", "xfs"),
        ("/proc/locks", "proc"),
    ],
)
def test_the_file_system_of_a_path_is_its_longest_mount_point(path: str, kind: str) -> None:
    assert file_system_of(path, MOUNTINFO) == kind


def test_a_mountinfo_not_understood_is_an_error() -> None:
    with pytest.raises(ValueError):
        file_system_of("/a", "27 1 254:0 / / rw ext4 /dev/vda rw\n")  # no "-" before the type
    with pytest.raises(ValueError):
        file_system_of("/a", "")


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("1: POSIX  ADVISORY  WRITE 321 fd:01:1234 0 EOF", LockLine("POSIX", 321, (253, 1), 1234)),
        ("2: OFDLCK ADVISORY  READ  -1 08:02:77 5 14", LockLine("OFDLCK", -1, (8, 2), 77)),
        (
            "3: FLOCK  ADVISORY  WRITE 9 00:2a:18446744073709551615 0 EOF",
            LockLine("FLOCK", 9, (0, 42), 2**64 - 1),
        ),
        ("4: LEASE  BREAKING  UNLCK 0 103:00:5 0 EOF", LockLine("LEASE", 0, (259, 0), 5)),
        ("5: DELEG  ACTIVE    READ  12 fe:00:6 0 EOF", LockLine("DELEG", 12, (254, 0), 6)),
        ("6: POSIX  *NOINODE* WRITE 7 <none>:0 0 EOF", LockLine("POSIX", 7, None, 0)),
        ("3: -> POSIX  ADVISORY  WRITE 10070 fe:00:2197963 0 EOF", None),
        ("12:  -> FLOCK  ADVISORY  WRITE 8 fe:00:1 0 EOF", None),
    ],
)
def test_lines_of_proc_locks(line: str, parsed: LockLine | None) -> None:
    assert parse_line(line) == parsed


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        "1: POSIX ADVISORY WRITE 321 fd:01:1234 0",  # seven words
        "1: UNKNOWN UNKNOWN  UNLCK 321 fd:01:1234 0 EOF",  # a kind not known here
        "1: ACCESS ADVISORY  WRITE 321 fd:01:1234 0 EOF",
        "1: POSIX ADVISORY NONE 321 fd:01:1234 0 EOF",
        "x: POSIX ADVISORY WRITE 321 fd:01:1234 0 EOF",
        "1: POSIX ADVISORY WRITE +321 fd:01:1234 0 EOF",
        "1: POSIX ADVISORY WRITE \u0663 fd:01:1234 0 EOF",  # another script's digit
        "1: POSIX ADVISORY WRITE 321 fd:01 0 EOF",
        "1: POSIX ADVISORY WRITE 321 fd:01:12:34 0 EOF",
        "1: POSIX ADVISORY WRITE 321 fg:01:1234 0 EOF",
        "1: POSIX ADVISORY WRITE 321 fd:01:1_234 0 EOF",
        "1: POSIX ADVISORY WRITE 321 fd:01:1234 0 END",
        "1: => POSIX ADVISORY WRITE 321 fd:01:1234 0 EOF",
        "1: -> POSIX ADVISORY WRITE x fd:01:1234 0 EOF",  # a waiter's line is read as well
    ],
)
def test_lines_not_understood_are_errors(line: str) -> None:
    with pytest.raises(ValueError):
        parse_line(line)


MODES = {"POSIX": "ADVISORY", "OFDLCK": "ADVISORY", "FLOCK": "ADVISORY", "LEASE": "ACTIVE"}


@given(
    st.integers(1, 10**6),
    st.booleans(),
    st.sampled_from([*sorted(MODES), "DELEG"]),
    st.sampled_from(["READ", "WRITE", "UNLCK"]),
    st.integers(-1, 2**22),
    st.integers(0, 4095),
    st.integers(0, 2**20 - 1),
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**63 - 1),
    st.one_of(st.just("EOF"), st.integers(0, 2**63 - 1).map(str)),
)
@example(3, True, "POSIX", "WRITE", 10070, 254, 0, 2197963, 0, "EOF")
def test_a_line_as_the_kernel_prints_it_reads_back(
    number: int,
    waiting: bool,
    kind: str,
    access: str,
    pid: int,
    major: int,
    minor: int,
    inode: int,
    start: int,
    end: str,
) -> None:
    """fs/locks.c's format: `%lld: `, then ` ->` for a waiter, kind, mode, type, then
    `%d %02x:%02x:%lu ` and the range."""
    arrow = " -> " if waiting else ""
    line = (
        f"{number}: {arrow}{kind:<6} {MODES.get(kind, 'BREAKER'):<9} {access} "
        f"{pid} {major:02x}:{minor:02x}:{inode} {start} {end}"
    )
    expected = None if waiting else LockLine(kind, pid, (major, minor), inode)
    assert parse_line(line) == expected
    assert census.parse_locks(f"{line}\n{line}\n") == ([expected] * 2 if expected else [])


def test_held_in_lists_the_lock_files_only_when_something_is_held(tmp_path: Path) -> None:
    """What a dry run asks: nothing held on the file system -> no lock file looked at."""
    from imcache.core.lock_census import held_in

    paths = lock_files(tmp_path, 40)
    folders = {str(tmp_path / "a.Tool"), str(tmp_path / "b.Tool")}
    listings: list[int] = []

    def list_locks() -> dict[str, int]:
        listings.append(1)
        return listed(tmp_path)

    root = str(tmp_path)
    if census.held_among(root, listed(tmp_path)) is None:
        pytest.skip("no trusted census on this file system")
    assert held_in(root, folders, list_locks) == set()
    assert listings == [] or _other_locks_on_this_file_system(tmp_path)
    with holding(f"exclusive={paths[3]}", f"shared={paths[8]}"):
        assert held_in(root, folders, list_locks) == {paths[3], paths[8]}
        assert held_in(root, folders, list_locks) == asked_one_by_one(listed(tmp_path))
    assert listings, "something was held: the lock files were listed"
    mounts = census.read_mountinfo() + f"99 1 0:99 / {tmp_path.resolve()} rw - nfs4 srv:/x rw\n"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(census, "read_mountinfo", lambda: mounts)
        assert held_in(root, folders, list_locks) is None


def _other_locks_on_this_file_system(path: Path) -> bool:
    """Whether another process holds a lock on the file system of `path` (a busy machine)."""
    device = os.stat(path).st_dev
    wanted = (os.major(device), os.minor(device))
    return any(line.device == wanted for line in census.parse_locks(census.read_proc_locks()))
