"""Attempts beside an entry: earlier ones swept, a finished run's folder placed onto its key.

A run fills a private folder (`<key>.run-<host>-<pid>`) and publishes it by renaming it onto
`<key>`. Renaming a folder onto a non-empty one fails, so the first publisher wins on any POSIX file
system, whatever its locks do: a reader never sees an entry being filled, and a loser hands back
the winner's entry. Only a miss imports this module.
"""

from __future__ import annotations

import contextlib
import errno
import os

from imcache.core.entry import check_record, output_damage
from imcache.core.errors import CacheError
from imcache.core.files import fsync_folder, remove_tree, remove_tree_quietly
from imcache.core.layout import (
    attempts_of,
    deleting_name,
    host_name,
    is_key,
    private_owner,
)

PLACE_TRIES = 10  # each turn lost means another process published or removed the entry meanwhile
# What renaming a folder onto the key says when the key is taken: a non-empty folder there, or
# (a shared cache's sticky folder) one that belongs to another user, checked before its content.
_TAKEN = (errno.ENOTEMPTY, errno.EEXIST, errno.EPERM, errno.EACCES)
# This process's run folders still being filled (names): threads share our pid, so a folder
# named for it is a leftover of an earlier process only if it is none of these.
_OURS: set[str] = set()


def mark_ours(private: str) -> None:
    _OURS.add(os.path.basename(private))


def forget_ours(private: str) -> None:
    _OURS.discard(os.path.basename(private))


def clear_attempts(entry: str, *, entry_too: bool) -> None:
    """Remove the earlier attempts at `entry`'s key (and the entry itself if `entry_too`: one
    made in place). Runs still going, here or on another host, and other users' failed attempts
    are left alone."""
    parent, key = os.path.split(entry)
    os.makedirs(parent, exist_ok=True)
    for name in os.listdir(parent):
        if not ((name == key and entry_too) or name.startswith(attempts_of(key))):
            continue
        if private_owner(name) is not None and run_is_live(name) is not False:
            continue  # a run or fetch going on (or another host's: we cannot tell): clear's
        path = os.path.join(parent, name)
        if owner_of(path) not in (os.geteuid(), None) and os.geteuid() != 0:
            if name != key:
                continue  # another user's failed attempt: theirs to remove
            refuse_replacing_others(path)
        remove_attempt(path)


def refuse_replacing_others(entry: str) -> None:
    """A shared cache never lets one user replace another's entry (the sticky bit would refuse
    the rename anyway, after the tool ran)."""
    from imcache.core.store import user_name

    owner = owner_of(entry)
    if owner in (os.geteuid(), None) or os.geteuid() == 0:
        return
    raise CacheError(
        f"entry {entry} belongs to user {user_name(owner)}, and a "
        "shared cache never lets one user replace another's entry",
        "ask them to run it again (or to run 'imcache verify --fix' if it is "
        "damaged), or use a private --base-dir",
    )


def place_entry(attempt: str, entry: str, *, replace: bool = False) -> bool:
    """Make a complete attempt (its record written) the entry: True if it is now the entry.

    An intact entry already there won: it stays and the attempt is discarded (False), unless
    `replace` (`--force`, or the remote's winner replacing our own). One that is not intact
    (damaged, or its record for another key) goes aside first."""
    _OURS.discard(os.path.basename(attempt))  # complete: a leftover if it stays behind
    for _ in range(PLACE_TRIES):
        try:
            os.rename(attempt, entry)
        except OSError as exc:
            if exc.errno not in _TAKEN or not os.path.lexists(entry):
                raise
        else:
            fsync_folder(os.path.dirname(entry))  # the rename is what publishes: keep it
            return True
        if not replace and intact(entry):
            remove_tree_quietly(attempt)
            return False
        refuse_replacing_others(entry)
        doomed = deleting_name(entry)
        with contextlib.suppress(FileNotFoundError):  # removed by another process meanwhile
            os.rename(entry, doomed)
            with contextlib.suppress(OSError):  # what stays is clear's to sweep
                remove_tree(doomed)
    raise CacheError(
        f"cannot publish {entry}: other processes kept replacing it",
        "run again; if it persists, check what else writes to the cache",
    )


def intact(entry: str) -> bool:
    """A complete entry whose record is for its key and whose outputs are as recorded."""
    record, damage = check_record(entry)
    if record is None or damage or record.get("key") != os.path.basename(entry):
        return False
    return not output_damage(entry, record)


def run_is_live(name: str) -> bool | None:
    """Whether the run (or fetch) whose private folder is `name` may still be going: False once
    its process on this host is gone (or it is our own pid's); None for another host's: we
    cannot tell."""
    owner = private_owner(name)
    if owner is None:
        return False
    host, pid = owner
    if host != host_name():
        return None
    if pid == os.getpid():  # one of our threads' runs, or left by an earlier process
        return name in _OURS
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process, alive
    return True


def remove_attempt(path: str) -> None:
    """Remove an earlier attempt; a failure (a read-only cache) is reported, never hidden.

    An entry is renamed aside first, in one step: killed half-way through the deletion, we
    must not leave its record standing over half its files (a hit naming files that are gone).
    """
    try:
        if is_key(os.path.basename(path)):
            doomed = deleting_name(path)
            os.rename(path, doomed)
            path = doomed
        remove_tree(path)
    except OSError as exc:
        raise CacheError(
            f"cannot remove the earlier attempt {path}: {exc.strerror or exc}",
            "choose a writable --base-dir (or IMCACHE_BASE_DIR)",
        ) from exc


def owner_of(path: str) -> int | None:
    try:
        return os.lstat(path).st_uid
    except FileNotFoundError:
        return None
