"""Lifecycle at scale: ls, stats and clear over a big cache, and hit latency that stays flat.

One real `imcache run mrtrix3.MRCat` entry is the template; N clones of its folder (new keys,
five interface names, last uses spread evenly over SPAN_DAYS) make the big cache, in the same
root. Every command is timed as a whole process, as a user would run it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from bench import DATA, Figure, imcache_command, timed
from imcache.core.entry import mark_fields
from imcache.core.index import entry_line, index_path
from imcache.core.layout import DELETING, INDEX_FOLDER, RECORD, ROOT_NAME, SESSION, USED_MARK
from imcache.core.store import Store

INTERFACES = ("mrtrix3.MRCat", "fsl.Merge", "fsl.BET", "ants.N4BiasFieldCorrection", "afni.Volreg")
SPAN_DAYS = 90  # last uses spread evenly over the past SPAN_DAYS
DAY_NS = 86400 * 10**9
COMMAND_LIMIT = 2.0  # issue 17: each lifecycle command under 2 s at 100,000 entries
HIT_RATIO_LIMIT = 1.10
Clone = tuple[str, str, int]  # interface, key, last use (ns)


def add_arguments(parser: argparse._ArgumentGroup) -> None:
    parser.add_argument("--entries", type=int, default=100_000, help="size of the big cache")
    parser.add_argument("--keep", action="store_true", help="keep the cache in bench/.data/")


def run(args: argparse.Namespace) -> list[Figure]:
    DATA.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lifecycle-", dir=DATA))
    try:
        return _bench(work, args.entries)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _bench(work: Path, n: int) -> list[Figure]:
    import nibabel as nib
    import numpy as np

    for seed, name in enumerate(("a.nii", "b.nii")):
        data = np.random.default_rng(seed).random((4, 4, 3), dtype=np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(work / name))
    cli = [imcache_command(), "--base-dir", str(work / "base")]
    hit = [*cli, "run", "mrtrix3.MRCat", "--in-files", "a.nii", "b.nii"]
    timed(hit, cwd=work)  # a miss: the real entry, our template
    root = work / "base" / ROOT_NAME
    (template,) = [p for p in (root / "mrtrix3.MRCat").iterdir() if p.is_dir()]
    shutil.copytree(work / "base", work / "small", symlinks=True)  # stays at one entry
    one = [imcache_command(), "--base-dir", str(work / "small"), *hit[3:]]

    start = time.perf_counter()
    clones = build(root, template, n, time.time_ns())
    built = time.perf_counter() - start
    os.sync()  # no writeback of the build under the timings that follow
    print(f"built {n:,} entries in {built:.1f} s", flush=True)
    small, big = _hit_seconds([one, hit], work)
    figures = [
        Figure(f"build {n:,} entries ({os.cpu_count()} processes)", built),
        Figure("hit, 1 entry in the cache (median of 15)", small),
        Figure(f"hit, {n + 1:,} entries (median of 15)", big),
        Figure(f"hit flatness: {n + 1:,} / 1 entries", big / small, HIT_RATIO_LIMIT, "x"),
    ]
    return figures + _commands(cli, root, n + 1, clones)


def _hit_seconds(hits: list[list[str]], work: Path) -> list[float]:
    """Median seconds of each hit, the runs interleaved: a slow moment of the machine (this
    kind of machine has them) slows every column alike instead of one."""
    for hit in hits:
        _, first = timed([*hit, "--json"], cwd=work)  # also warms the page cache
        if not json.loads(first.stdout)["cached"]:
            raise SystemExit(f"not a hit: {first.stderr}")
    seconds: list[list[float]] = [[] for _ in hits]
    for _ in range(15):
        for hit, column in zip(hits, seconds, strict=True):
            column.append(timed(hit, cwd=work)[0])
    return [statistics.median(column) for column in seconds]


def build(root: Path, template: Path, n: int, now_ns: int) -> list[Clone]:
    """N clones of `template`, last used evenly over SPAN_DAYS before `now_ns`, in parallel."""
    rng = random.Random(0)
    clones = [
        (rng.choice(INTERFACES), f"{rng.getrandbits(128):032x}", now_ns - span)
        for span in (SPAN_DAYS * DAY_NS * (2 * i + 1) // (2 * n) for i in range(n))
    ]
    files = {
        p.name: p.read_bytes()
        for p in sorted(template.iterdir())
        if p.name not in (RECORD, USED_MARK)
    }
    record = (template / RECORD).read_text(encoding="utf-8")
    files[USED_MARK] = (
        template / USED_MARK
    ).read_bytes()  # holds the entry's size, as a run writes
    for name in INTERFACES:
        (root / name).mkdir(exist_ok=True)
    write = partial(_write_clones, str(root), files, record, template.name, template.parent.name)
    chunks = [
        [clone for clone in clones[i : i + 5000] if clone[0] == interface]
        for i in range(0, n, 5000)
        for interface in INTERFACES
    ]
    with ProcessPoolExecutor() as pool:
        list(pool.map(write, chunks))
    return clones


def _write_clones(
    root: str, files: dict[str, bytes], record: str, key: str, interface: str, chunk: list[Clone]
) -> None:
    """As a run does: lock file, entry folder, outputs and logs, use mark, the record last,
    then the entry's line in its folder's index."""
    lines: dict[str, list[bytes]] = {}
    for name, new_key, used in chunk:
        folder = os.path.join(root, name)
        _write(os.path.join(folder, f"{new_key}.lock"), b"", 0o644)  # as EntryLock makes it
        entry = os.path.join(folder, new_key)
        os.mkdir(entry)
        for file_name, payload in files.items():
            if file_name != USED_MARK:
                _write(os.path.join(entry, file_name), payload)
        text = record.replace(key, new_key).replace(interface, name)
        mark = _published_at(files[USED_MARK], used)
        for path, payload in ((USED_MARK, mark), (RECORD, text.encode())):
            _write(os.path.join(entry, path), payload)
            os.utime(os.path.join(entry, path), ns=(used, used))
        size, created, summary = mark_fields(mark) or (0, 0, None)
        if summary is not None:
            inode = os.stat(os.path.join(entry, USED_MARK)).st_ino
            lines.setdefault(folder, []).append(entry_line(new_key, inode, created, size, summary))
    os.makedirs(os.path.join(root, INDEX_FOLDER), exist_ok=True)
    for folder, appended in lines.items():  # one O_APPEND write per folder, as runs append
        path = index_path(root, os.path.basename(folder))
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o664)
        try:
            os.write(fd, b"".join(appended))
        finally:
            os.close(fd)


def _published_at(mark: bytes, moment_ns: int) -> bytes:
    """The template's mark with the clone's own moment of publishing (its second line)."""
    size, published, rest = mark.split(b"\n", 2)
    if not published.strip().isdigit():
        return mark  # an older mark: the clone's time is its record's
    return b"\n".join((size, b"%*d" % (len(published), moment_ns), rest))


def _write(path: str, payload: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, payload)
    finally:
        os.close(fd)


def _commands(cli: list[str], root: Path, total: int, clones: list[Clone]) -> list[Figure]:
    """Each command beside a peer timed in the same run, the two interleaved (medians of 3):
    what the file system itself costs for the same walk, or the same deletion."""
    figures = []
    walk = ["sh", "-c", f"find {shlex.quote(str(root))} -name {USED_MARK} | wc -l"]

    def time_it(args: list[str], peer: list[str], repeat: int = 3, **options: object) -> str:
        seconds, done, peer_seconds = _interleaved([*cli, *args], peer, repeat, **options)
        count = _selected(args, done.stdout or "")
        label = " ".join(args) + ("" if count is None else f" [{count:,} of {total:,}]")
        peer_name = "find | wc -l" if peer is walk else "rm -rf of as many entries"
        figures.append(
            Figure(
                label,
                seconds,
                COMMAND_LIMIT,
                imcache=f"{seconds:.3f} s",
                peer=f"{peer_seconds:.3f} s ({peer_name})",
            )
        )
        print(f"{seconds:7.3f} s  {label}   peer {peer_seconds:.3f} s: {peer_name}", flush=True)
        return done.stdout or ""

    time_it(["ls", "--json"], walk, stdout=subprocess.DEVNULL)  # > /dev/null
    half = json.loads(time_it(["stats", "--json"], walk))["bytes"] // 2
    time_it(["clear", "--older-than", "30d", "--dry-run", "--json"], walk)
    since = datetime.fromtimestamp(time.time() - 60 * 86400).date().isoformat()
    time_it(["clear", "--since", since, "--dry-run"], walk)
    time_it(["clear", "--max-size", str(half), "--dry-run"], walk)
    timed([*cli, "session", "start"])
    # A pipeline then uses the youngest fifth of the entries again, after the session's start.
    started = json.loads((root / SESSION).read_text(encoding="utf-8"))["started_ns"]
    store = Store(str(root))
    for number, (name, key, _) in enumerate(sorted(clones, key=lambda c: -c[2])[: total // 5]):
        store.touch_used_mark(str(root / name / key), started + 1000 * number)  # as a hit does
    time_it(["clear", "--previous", "--dry-run"], walk)
    # The oldest tenth, beside `rm -rf` of a copy of as many entries made the same way.
    oldest = [clone for clone in clones if clone[2] < time.time_ns() - SPAN_DAYS * 9 // 10 * DAY_NS]
    copy = root.parent / "copy"
    copy.mkdir()
    template = next(p for p in (root / clones[0][0]).iterdir() if p.is_dir())
    build(copy, template, len(oldest), time.time_ns())
    os.sync()
    remove = ["rm", "-rf", str(copy)]
    clear = [*cli, "clear", "--older-than", f"{SPAN_DAYS * 9 // 10}d"]
    took, done = timed(clear)
    # The files of a large clear are deleted after it returns (core/purge.py): the peer runs once
    # they are gone, and how long that took is a row of its own.
    deleted = took + _deleted_after(root)
    peer = timed(remove)[0]
    count = _selected(clear[3:], done.stdout)
    label = f"clear --older-than {SPAN_DAYS * 9 // 10}d [{count:,} of {total:,}]"
    rows = (
        (label, took, COMMAND_LIMIT),
        ("  ... and its files deleted (background)", deleted, None),
    )
    for name, seconds, limit in rows:
        peer_text = f"{peer:.3f} s (rm -rf of as many entries)"
        figures.append(Figure(name, seconds, limit, imcache=f"{seconds:.3f} s", peer=peer_text))
        print(f"{seconds:7.3f} s  {name}   peer {peer_text}", flush=True)
    return figures


def _deleted_after(root: Path, limit: float = 600.0) -> float:
    """Seconds until no entry set aside for deletion is left under `root` (polled)."""
    start = time.perf_counter()
    while any(
        f".{DELETING}-" in name
        for folder in root.iterdir()
        if folder.is_dir()
        for name in os.listdir(folder)
    ):
        if time.perf_counter() - start > limit:
            raise SystemExit(f"the deletion of a clear's files took over {limit:.0f} s")
        time.sleep(0.05)
    return time.perf_counter() - start


def _interleaved(
    command: list[str], peer: list[str], repeat: int, **options: Any
) -> tuple[float, subprocess.CompletedProcess[str], float]:
    """Median seconds of `command` and of `peer`, run in turns (a slow moment of a shared
    machine then slows both alike), and the command's last run."""
    seconds: list[float] = []
    peer_seconds: list[float] = []
    for _ in range(repeat):
        took, done = timed(command, **options)
        seconds.append(took)
        peer_seconds.append(timed(peer)[0])
    return statistics.median(seconds), done, statistics.median(peer_seconds)


def _selected(args: list[str], stdout: str) -> int | None:
    """How many entries a clear removed, or would remove, from its output."""
    if args[0] != "clear":
        return None
    if "--json" in args:
        return len(json.loads(stdout)["removed"])
    return sum(line.startswith(("would remove ", "removed ")) for line in stdout.splitlines())
