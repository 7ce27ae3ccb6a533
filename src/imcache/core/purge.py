"""Deletion that outlives its `clear`: the entries a large clear set aside, deleted by a detached
process, so that the clear returns once they are gone from the cache rather than off the disk.

A clear renames each entry aside under its lock (`<key>.deleting-<pid>.<token>`: it is out of the
cache at once) and `hand_over` gives the set-aside folders to `python -m imcache.core.purge ROOT`,
their paths NUL-separated on stdin. That process reads them all, forks the deleter into a
session of its own and says how many it took. The clear waits for that process alone, which
exits at once: no zombie is left, and the deleter has no terminal (a Ctrl-C of the clear or a
closed window does not reach it) and no stream of the clear's (stdin, stdout and stderr on
/dev/null: a caller reading the clear's output sees its end when the clear ends). The deleter
trusts nothing it was given: it keeps only `.deleting-` folders of an interface folder of ROOT,
and removes them as a clear does in the foreground. Whatever stops it leaves `.deleting-`
folders, which the next clear sweeps: nothing is lost either way. Click-free, and it imports
little: it starts once per large clear.
"""

from __future__ import annotations

import os
import sys

from imcache.core.files import is_real_folder, remove_shared
from imcache.core.layout import DELETING, LEFTOVER_PATTERN, lock_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

HAND_OVER_SECONDS = 30.0  # a deleter not detached by then is not waited for: delete here
TAKEN = b"taken %d\n"  # the answer of a hand-over: how many folders the deleter took


def hand_over(root: str, paths: list[str]) -> bool:
    """Give the folders set aside in `root` to a detached deleter: False when it could not be
    started or did not answer that it took them all (they are then the caller's to delete)."""
    import subprocess  # a large clear only

    try:
        deleter = subprocess.Popen(
            [sys.executable, "-m", "imcache.core.purge", os.path.abspath(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the clear's process group: its Ctrl-C is not ours
        )
    except (OSError, ValueError):  # no interpreter to start (a frozen or embedded one)
        return False
    with deleter:
        try:
            answer, _ = deleter.communicate(b"".join(map(_encoded, paths)), HAND_OVER_SECONDS)
        except subprocess.TimeoutExpired:
            deleter.kill()
            deleter.communicate()
            return False
    # Not started, or broken off (a pipe closed early is answered here too): a deleter that has
    # started meanwhile and the caller then share the work, as two clears do.
    return deleter.returncode == 0 and answer == TAKEN % len(paths)


def _encoded(path: str) -> bytes:
    return os.fsencode(path) + b"\0"


def acceptable(root: str, paths: list[str]) -> list[str]:
    """The paths that name a `.deleting-` folder in an interface folder of `root`: absolute,
    normal (no `..`, no doubled or trailing separator), its parent a real folder of the root
    (not a link out of it). Anything else given to the deleter is not touched."""
    real_root = os.path.realpath(root)
    parents: dict[str, bool] = {}  # a clear's paths share a handful of interface folders
    leftover = LEFTOVER_PATTERN.fullmatch
    kept = []
    for path in paths:
        parent, name = os.path.split(path)
        found = leftover(name)
        if found is None or found.group(2) != DELETING or os.path.normpath(path) != path:
            continue
        if parent not in parents:
            real = os.path.realpath(parent)
            parents[parent] = (
                os.path.isabs(parent)
                and os.path.dirname(parent) == root
                and os.path.dirname(real) == real_root
                and not os.path.islink(parent)
            )
        if parents[parent]:
            kept.append(path)
    return kept


def drop_locks_of(paths: list[str]) -> None:
    """The lock files of the entries set aside at `paths`, which their clear left (a large
    one: `Deleter.locks`): each removed under its lock, unless a run holds it or the key has
    an entry again (`drop_orphan_lock`). Only a regular file: a link is asked of by a clear."""
    import stat

    from imcache.core.lock import drop_orphan_lock

    for path in paths:
        found = LEFTOVER_PATTERN.fullmatch(os.path.basename(path))
        if found is None or found.group(2) != DELETING:
            continue
        lock = os.path.join(os.path.dirname(path), lock_name(found.group(1)))
        try:
            regular = stat.S_ISREG(os.lstat(lock).st_mode)
        except OSError:  # dropped already (another clear), or never there
            continue
        if regular:
            drop_orphan_lock(lock)


def read_paths(payload: bytes) -> list[str]:
    """NUL-terminated paths; a last one with no NUL (its sender cut short) is dropped."""
    return [os.fsdecode(raw) for raw in payload.split(b"\0")[:-1] if raw]


def main(arguments: list[str]) -> int:
    """Read every path, fork the deleter, answer how many paths it took, and exit: what the
    clear waits for. The deleter trusts none of them until it has looked (`acceptable`)."""
    if len(arguments) != 1 or not os.path.isabs(arguments[0]):
        sys.stderr.write("usage: python -m imcache.core.purge ROOT < NUL-separated paths\n")
        return 2
    paths = read_paths(sys.stdin.buffer.read())
    if paths:
        try:
            child = os.fork()
        except OSError:
            return 1  # no answer: the clear deletes them itself
        if child == 0:
            _delete_detached(os.path.normpath(arguments[0]), paths)
    os.write(sys.stdout.fileno(), TAKEN % len(paths))
    return 0


def _delete_detached(root: str, paths: list[str]) -> NoReturn:
    """The deleter: its own session, no terminal, no stream of the clear's, no folder held."""
    try:
        import signal

        os.setsid()
        for number in (signal.SIGINT, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(null, stream)
        if null > 2:
            os.close(null)
        os.chdir("/")
        doomed = [path for path in acceptable(root, paths) if is_real_folder(path)]
        remove_shared(doomed, threads=2)
        drop_locks_of(doomed)
    finally:
        os._exit(0)  # never back into the parent's code; nothing of its to flush


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
