"""Every name and pattern imcache gives to things on disk, in one place.

The cache root `<base>/imcache_mem` holds the files that describe it, one folder per interface,
and in each folder one entry per key (`<key>/`), the entry's lock (`<key>.lock`) and, for a while,
runs still going (`<key>.run-<host>-<pid>/`, renamed onto `<key>` once complete) and attempts that
failed or are being deleted. Nothing else in imcache spells these names: a second
copy of "our own files" is how a glob once handed back `stdout.txt` as a tool's output.
"""

from __future__ import annotations

import os
from itertools import count

from imcache.core.lazyre import lazy_pattern  # compiled when used: a hit matches none

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

LAYOUT = 1  # the version of this layout, kept in LAYOUT_FILE and in every record

# --- the cache root -----------------------------------------------------------------------------
ROOT_NAME = "imcache_mem"  # <base>/imcache_mem, as nipype's Memory makes nipype_mem
LAYOUT_FILE = "imcache-layout.json"
CACHEDIR_TAG_FILE = "CACHEDIR.TAG"
README_FILE = "README.txt"
GITIGNORE_FILE = ".gitignore"  # `*`: the default base is the current folder, often a git checkout
EVENTS = "events.log"  # hits, misses and failures, one line each, for `imcache stats`
EVENTS_ASIDE = "events-aside.log"  # events.log as `clear` set it aside, folded at the next clear
EVENTS_FOLDED = "events-folded.log"  # counts per event and interface of the lines folded
SESSION = "session.json"  # the latest `imcache session start`
SESSIONS_LOG = "sessions.log"  # every session start, appended
MEMO_FOLDER = "digests"  # the digest memo
# A line per entry published, for scans (core/index.py): `index/<interface>.log`. An interface's
# name holds a dot: no interface folder is ever named like this folder, or the memo's.
INDEX_FOLDER = "index"
INDEX_SUFFIX = ".log"
# Beside it, `index/<interface>.snapshot`: a scan's reading of the folder and its index, kept for
# the next scan while the folder stays as it was (core/snapshot.py).
SNAPSHOT_SUFFIX = ".snapshot"
REMOTE_PROBES = "remote-probes.json"  # which remotes honour create-only writes (see below)
ROOT_FILES = frozenset(
    {
        REMOTE_PROBES,
        CACHEDIR_TAG_FILE,
        README_FILE,
        GITIGNORE_FILE,
        LAYOUT_FILE,
        SESSION,
        SESSIONS_LOG,
        EVENTS,
        EVENTS_ASIDE,
        EVENTS_FOLDED,
        MEMO_FOLDER,
        INDEX_FOLDER,
    }
)
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by imcache.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
# A shared cache (see `imcache init --shared`): the group may add entries; the sticky bit keeps
# each user's entries their own (nobody else can rename or remove them); setgid keeps the group.
SHARED_ROOT_MODE = 0o3770
SHARED_ENTRY_MODE = 0o2750  # the group reads a finished entry; only its owner changes it
SHARED_LOCK_MODE = 0o664  # the group locks an entry too: an exclusive POSIX lock needs write
GITIGNORE = "# Made by imcache: a cache is never committed.\n*\n"
README = """This folder is imcache's cache: one folder per interface, one entry per key.
Each entry holds a tool's outputs, its captured stdout.txt and stderr.txt, and imcache.json,
the record of the run, written last: an entry without it is incomplete and never used.
Remove entries with `imcache clear`, not by hand while imcache runs.
"""

# --- an entry's own files -----------------------------------------------------------------------
RECORD = "imcache.json"  # the record of a finished run, written last
USED_MARK = ".imcache-used"  # its mtime is the entry's last use; it holds the entry's size
MARK_WIDTH = 21  # the used mark holds the entry's size as text of this fixed width
STDOUT_LOG = "stdout.txt"  # the tool's captured streams, in every entry
STDERR_LOG = "stderr.txt"
LOGS = (STDOUT_LOG, STDERR_LOG)
# Names a tool's output may never take: imcache writes them itself.
RESERVED = frozenset({RECORD, USED_MARK})
DROPPED_NOTE = "imcache-dropped.txt"  # in a failed attempt: the large outputs it no longer holds
OWN_FILES = frozenset({RECORD, USED_MARK, STDOUT_LOG, STDERR_LOG, DROPPED_NOTE})

# --- keys, locks and attempts -------------------------------------------------------------------
KEY_PATTERN = lazy_pattern(r"[0-9a-f]{32}")
HEX_DIGITS = "0123456789abcdef"
KEY_PREFIX_PATTERN = lazy_pattern(r"[0-9a-f]{4,32}")  # what `imcache show` takes
LOCK_SUFFIX = ".lock"
FAILED = "failed"  # <key>.failed-<time>-<pid>: a failed attempt, kept for inspection
DELETING = "deleting"  # <key>.deleting-<pid>.<token>: an entry on its way out
FETCHING = "fetching"  # <key>.fetching-<host>-<pid>.<token>: an entry being fetched
RUNNING = "run"  # <key>.run-<host>-<pid>.<token>: a run's private folder, renamed onto <key>
LEFTOVER_PATTERN = lazy_pattern(r"([0-9a-f]{32})\.(failed|deleting|fetching|run)-.+")
TEMPORARY_MARK = ".tmp-"  # <name>.tmp-<pid>[-<thread>]: a file being written atomically


def cache_root(base_dir: str) -> str:
    return os.path.join(os.path.abspath(base_dir), ROOT_NAME)


def is_key(name: str) -> bool:
    """`KEY_PATTERN.fullmatch(name)`, with str methods: a scan asks it of 100,000 names."""
    return len(name) == 32 and not name.strip(HEX_DIGITS)


def lock_name(key: str) -> str:
    return key + LOCK_SUFFIX


def key_of_lock(name: str) -> str | None:
    """The key whose lock file `name` is, or None."""
    if name.endswith(LOCK_SUFFIX) and is_key(name[: -len(LOCK_SUFFIX)]):
        return name[: -len(LOCK_SUFFIX)]
    return None


def failed_name(entry: str, stamp: str) -> str:
    return f"{entry}.{FAILED}-{stamp}-{os.getpid()}"


def deleting_name(entry: str) -> str:
    """Where an entry goes to be deleted: this process's pid, a random token of its own and a
    count, so that two processes alike in pid (two hosts, containers) or two threads of one
    never rename onto one name. The token is drawn once per process (a clear names 10,000
    entries, and two system calls for each were a tenth of its work), anew after a fork."""
    pid, token = _DELETER_TOKEN or _draw_token()
    return f"{entry}.{DELETING}-{pid}.{token}{next(_DELETER_COUNT):x}"


_DELETER_TOKEN: list[object] = []  # [pid, token] of this process, once drawn
_DELETER_COUNT = count()


def _draw_token() -> list[object]:
    _DELETER_TOKEN[:] = [os.getpid(), os.urandom(4).hex()]
    return _DELETER_TOKEN


os.register_at_fork(after_in_child=_DELETER_TOKEN.clear)


def is_failed(name: str) -> bool:
    return f".{FAILED}-" in name


def fetching_name(entry: str) -> str:
    """As a run's folder: named for this host and process, and one fetch's alone (a token: two
    threads of a process never fill one folder)."""
    return f"{entry}.{FETCHING}-{host_name()}-{os.getpid()}.{os.urandom(4).hex()}"


def is_deleting(name: str) -> bool:
    return f".{DELETING}-" in name


def host_name() -> str:
    """This machine's name as run folders carry it (a separator in it would make a path), and
    where a pid means one process: its boot and pid namespace. Machines alike in name, and
    containers of one machine, see other pids: each must take the others' folders as another
    host's, never as its own process's leftovers."""
    name = os.uname().nodename.replace(os.sep, "_") or "localhost"
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as file:
            boot = file.read(8).decode()
        pids = os.readlink("/proc/self/ns/pid")  # pid:[4026531836]
    except (OSError, UnicodeDecodeError):  # not Linux
        return name
    return f"{name}~{boot}.{pids.strip('pid:[]')}"


def run_name(entry: str, token: str = "") -> str:
    """The private folder a run fills beside its entry, named for this host and process; the
    token makes it one run's alone: two threads of a process (whose locks never exclude each
    other) or two hosts alike in name and pid (containers) must never fill one folder."""
    tail = f".{token}" if token else ""
    return f"{entry}.{RUNNING}-{host_name()}-{os.getpid()}{tail}"


def private_owner(name: str) -> tuple[str, int] | None:
    """(host, pid) of the run or fetch whose private folder `name` is, or None."""
    for kind in (RUNNING, FETCHING):
        _key, dot, rest = name.partition(f".{kind}-")
        host, dash, pid = rest.rpartition("-")
        pid = pid.partition(".")[0]  # a run folder's token follows its pid
        if dot and dash and pid.isdigit():
            return host, int(pid)
    return None


def attempts_of(key: str) -> tuple[str, str, str, str]:
    """Prefixes of the names that earlier attempts at `key` leave beside it."""
    return (f"{key}.{FAILED}-", f"{key}.{DELETING}-", f"{key}.{FETCHING}-", f"{key}.{RUNNING}-")


def key_of_leftover(name: str) -> str:
    """The key a leftover (or an entry) belongs to: the part before the first dot."""
    return name.split(".", 1)[0]


def temporary_name(path: str, *, per_thread: int | None = None) -> str:
    suffix = f"{TEMPORARY_MARK}{os.getpid()}"
    return f"{path}{suffix}" if per_thread is None else f"{path}{suffix}-{per_thread}"


def is_temporary(name: str) -> bool:
    return TEMPORARY_MARK in name


# --- nipype descriptions (per user, per nipype version) ------------------------------------------
NIPYPE_DIST_PREFIX, NIPYPE_DIST_SUFFIX = "nipype-", ".dist-info"  # the installed nipype's metadata


def nipype_dist_version(name: str) -> str | None:
    r"""The version in a folder name `nipype-VERSION.dist-info` (VERSION: a digit, then no `-`),
    as `re.fullmatch(r"nipype-([0-9][^-]*)\.dist-info", name)` would give it, with str methods:
    a hit on a nipype name looks for it and does not import re."""
    if not (name.startswith(NIPYPE_DIST_PREFIX) and name.endswith(NIPYPE_DIST_SUFFIX)):
        return None
    version = name[len(NIPYPE_DIST_PREFIX) : -len(NIPYPE_DIST_SUFFIX)]
    return (
        version
        if version[:1].isdecimal() and version[:1].isascii() and "-" not in version
        else None
    )


NIPYPE_INDEX = "index.json"  # a package's interface names, beside their descriptions


def nipype_descriptions(env: Mapping[str, str], version: str) -> str:
    """$XDG_CACHE_HOME/imcache/nipype/<version>/: what nipype's specs say, derived once."""
    cache_home = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME", "~"), ".cache")
    return os.path.join(os.path.expanduser(cache_home), "imcache", "nipype", version)


# --- the remote tier (an S3 bucket, IMCACHE_REMOTE=s3://BUCKET[/PREFIX]) -------------------------
# Bazel's split: each distinct file once, by content (`cas/<aa>/<sha256>`), and one small action
# record per key (`ac/<Interface>/<key>.json`), written last and create-only: the first one stands.
REMOTE_LAYOUT = 1  # kept in every action record
REMOTE_CAS = "cas"
REMOTE_AC = "ac"
REMOTE_PROBE_FOLDER = "probes"  # `probes/<host>-<pid>-<time>`: the create-only probe's object
SHA256_PATTERN = lazy_pattern(r"[0-9a-f]{64}")


def remote_blob(sha256: str) -> str:
    return f"{REMOTE_CAS}/{sha256[:2]}/{sha256}"


def remote_record(interface: str, key: str) -> str:
    return f"{REMOTE_AC}/{interface}/{key}.json"


def remote_probe(tag: str) -> str:
    return f"{REMOTE_PROBE_FOLDER}/{tag}"
