"""`imcache run` racing with `imcache clear --all`, all in separate processes.

The promise under test: a run (hit or miss) holds its entry until its process exits, so a clear
running at the same moment never pulls the outputs away from a process that was handed their
paths; and every run and every clear succeeds.

Why the runs are `python -c` workers that call the CLI in-process, not `sh -c 'p=$(imcache run
... --get out_file) && test -e "$p"'`: `$(...)` returns only once the run's process has exited,
and with it the hold; by then a clear may rightly remove the entry, so that check would either
be flaky or, made lenient, could never fail. A worker instead runs `imcache run ... --get
out_file` through `cli.main` in its own process, takes the printed path, and keeps looking at
the output and the entry's record for HOLD_S seconds while the clears go on, the hold still in
place because the process has not exited. The check can fail: a control worker does the same,
then lets go of its hold (as a process that exits would) and must see its entry removed by the
clears within that time, which shows the clears do remove what is not held while the checks run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from imcache.core.store import Store
from tests.conftest import require_tool

MRCAT = "mrtrix3.MRCat"
HOLD_S = 2.0  # how long a held worker keeps checking its output
RELEASED_WAIT_S = 10.0  # how long the control worker waits for the clears to take its entry
WAVES = 2
HELD_OUTPUTS = ["r0.nii", "r1.nii", "r2.nii"] * 2  # 6 runs a wave, each key twice: hits and misses
CLEAR_LOOPS = 2

WORKER = r"""
import contextlib, io, json, os, sys, time

from imcache.cli.main import cli
from imcache.core import lock as locks

mode, seconds, args = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
captured = io.StringIO()
with contextlib.redirect_stdout(captured):
    try:
        cli.main(args, standalone_mode=False)
        code = 0
    except SystemExit as done:
        code = done.code
path = captured.getvalue().strip()
result = {"code": code, "path": path, "checks": 0, "missing_after": None, "gone": None}
if code == 0 and mode == "held":
    record = os.path.join(os.path.dirname(path), "imcache.json")
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if not (os.path.isfile(path) and os.path.getsize(path) > 0 and os.path.isfile(record)):
            result["missing_after"] = time.monotonic() - start
            break
        result["checks"] += 1
        time.sleep(0.02)
elif code == 0 and mode == "released":
    for lock in list(locks._HELD):  # let go, as an exited process would
        locks._drop_held(lock)
    start = time.monotonic()
    while os.path.exists(path) and time.monotonic() - start < seconds:
        time.sleep(0.02)
    result["gone"] = not os.path.exists(path)
print(json.dumps(result))
"""


@dataclass
class Worker:
    mode: str
    out: str
    returncode: int = -1
    result: dict[str, Any] = field(default_factory=dict)
    stderr: str = ""


@dataclass
class Cleared:
    started: float
    ended: float
    returncode: int
    report: dict[str, Any] | None
    stderr: str


@dataclass
class Race:
    cache_root: Path
    workers: list[Worker]
    clears: list[Cleared]
    windows: list[tuple[float, float]]  # when each wave of workers ran (monotonic)
    events: Counter[str]
    final: dict[str, Any]


def _imcache(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imcache", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _run_args(out: str) -> list[str]:
    return ["run", MRCAT, "--in-files", "a.nii", "b.nii", "--axis", "3", "--out-file", out]


def _clear_loop(env: dict[str, str], cwd: Path, stop: threading.Event, into: list[Cleared]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        done = _imcache(env, cwd, "clear", "--all", "--json")
        try:
            report = json.loads(done.stdout)
        except ValueError:
            report = None
        into.append(Cleared(started, time.monotonic(), done.returncode, report, done.stderr))


def _wave(env: dict[str, str], cwd: Path, wave: int) -> list[Worker]:
    workers = [Worker("held", out) for out in HELD_OUTPUTS]
    workers.append(Worker("released", f"control-{wave}.nii"))
    procs = []
    for worker in workers:
        seconds = HOLD_S if worker.mode == "held" else RELEASED_WAIT_S
        run = [*_run_args(worker.out), "--get", "out_file"]
        argv = [sys.executable, "-c", WORKER, worker.mode, str(seconds), *run]
        procs.append(
            subprocess.Popen(
                argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    try:
        for worker, proc in zip(workers, procs, strict=True):
            stdout, worker.stderr = proc.communicate(timeout=60)
            worker.returncode = proc.returncode
            lines = stdout.strip().splitlines()
            worker.result = json.loads(lines[-1]) if lines else {}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return workers


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Race]:
    require_tool("mrcat")
    import nibabel as nib
    import numpy as np

    top = tmp_path_factory.mktemp("race")
    work, base, home = top / "work", top / "base", top / "home"
    for folder in (work, home):
        folder.mkdir()
    env = {**os.environ, "IMCACHE_BASE_DIR": str(base), "HOME": str(home)}
    env["XDG_STATE_HOME"] = str(home / ".local" / "state")
    env.pop("IMCACHE_PATH", None)
    for name, seed in (("a.nii", 1), ("b.nii", 2)):
        data = np.random.default_rng(seed).random((4, 4, 3), dtype=np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(work / name))
    for out in HELD_OUTPUTS[:2]:  # some keys are there before the race: hits, unless cleared
        warm = _imcache(env, work, *_run_args(out))
        assert warm.returncode == 0, warm.stderr

    clears: list[Cleared] = []
    stop = threading.Event()
    loops = [
        threading.Thread(target=_clear_loop, args=(env, work, stop, clears), daemon=True)
        for _ in range(CLEAR_LOOPS)
    ]
    for loop in loops:
        loop.start()
    workers: list[Worker] = []
    windows = []
    try:
        for wave in range(WAVES):
            began = time.monotonic()
            workers += _wave(env, work, wave)
            windows.append((began, time.monotonic()))
    finally:
        stop.set()
        for loop in loops:
            loop.join(timeout=60)

    cache_root = base / "imcache_mem"
    events: Counter[str] = Counter()
    log = cache_root / "events.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        events[line.split()[1]] += 1
    final = _imcache(env, work, "clear", "--all", "--json")
    assert final.returncode == 0, final.stderr
    yield Race(cache_root, workers, clears, windows, events, json.loads(final.stdout))


def _describe(worker: Worker) -> str:
    return f"{worker.mode} {worker.out}: exit {worker.returncode} {worker.result}\n{worker.stderr}"


def test_every_run_succeeds(race: Race) -> None:
    assert len(race.workers) == WAVES * (len(HELD_OUTPUTS) + 1)
    for worker in race.workers:
        assert worker.returncode == 0 and worker.result.get("code") == 0, _describe(worker)
        path = Path(worker.result["path"])
        assert path.name == worker.out, _describe(worker)
        assert path.is_relative_to(race.cache_root), _describe(worker)


def test_outputs_stay_while_their_run_holds_them(race: Race) -> None:
    held = [w for w in race.workers if w.mode == "held"]
    for worker in held:
        assert worker.result.get("missing_after") is None, (
            "a clear removed an entry while the run that printed its path still held it:\n"
            + _describe(worker)
        )
        assert worker.result["checks"] >= 10, _describe(worker)


def test_clears_remove_an_entry_once_it_is_let_go(race: Race) -> None:
    """The control: without the hold, the same check sees the output vanish."""
    for worker in (w for w in race.workers if w.mode == "released"):
        assert worker.result.get("gone") is True, _describe(worker)


def test_clears_ran_during_the_runs_and_kept_held_entries(race: Race) -> None:
    for began, ended in race.windows:
        during = [c for c in race.clears if c.started < ended and c.ended > began]
        assert len(during) >= 4, f"only {len(during)} clears overlapped a wave"
    in_use = [c for c in race.clears if c.report and c.report["in_use"]]
    assert in_use, "no clear ever met an entry in use: the race did not happen"
    removed = [c for c in race.clears if c.report and c.report["removed"]]
    assert removed, "no clear ever removed anything during the race"


def test_every_clear_succeeds(race: Race) -> None:
    failed = [c for c in race.clears if c.returncode != 0 or c.report is None]
    assert not failed, (
        "\n\n".join(f"clear exited {c.returncode}:\n{c.stderr}" for c in failed[:3])
        + f"\n\n({len(failed)} of {len(race.clears)} clears failed)"
    )


def test_hits_and_misses_were_mixed(race: Race) -> None:
    assert race.events["miss"] >= 1 and race.events["hit"] >= 1, race.events
    assert race.events["fail"] == 0, race.events


def test_nothing_stays_held_after_the_runs_exit(race: Race) -> None:
    assert race.final["in_use"] == [], race.final
    assert not list(race.cache_root.glob("*/*/imcache.json"))
    leftovers = [
        p.name for p in race.cache_root.glob("*/*") if p.is_dir() and p.parent.name != "digests"
    ]
    assert leftovers == [], leftovers


# --- clears racing clears (and the commands that look inside) -----------------------------------

READERS = [
    ["ls", "--json"],
    ["stats", "--json"],
    ["clear", "--all", "-q"],
    ["session", "status", "--json"],
    ["ls", "--json"],
    ["clear", "--all", "-q"],
]
BIG_FILES = 8000

# A reader pays for Python's start-up first, says it is ready, waits until the clear under test
# takes the big entry's lock (the lock file appears: the entries made here have none before),
# then waits its own few milliseconds, and only then runs its command.
READER = r"""
import os, sys, time

from imcache.cli.main import cli

ready, signal, delay, args = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
open(ready, "w").close()
deadline = time.monotonic() + 20
while not os.path.exists(signal) and time.monotonic() < deadline:
    time.sleep(0.0002)
time.sleep(delay)
cli.main(args)
"""


def _start(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_clears_and_readers_racing_a_clear_all_succeed(cache_root: Path, tmp_path: Path) -> None:
    """While a clear removes an entry, other clears (and `ls`, `stats`) look at that entry.

    Whatever a scan reads of an entry it has listed, the entry may vanish meanwhile (another
    clear renames it away): the scan must skip it, not fail. To make that moment likely, the
    entry (made with the store's own calls: a scan needs no more) has many files, so that a
    scan that walks it takes long, and the readers start their scans while the clear under test
    holds the entry's lock, a few milliseconds apart, so that its rename lands inside them.
    """
    store = Store(str(cache_root))
    store.ensure("pkg.Tool")
    failures: list[str] = []
    for round_ in range(2):
        key = f"{round_:032x}"  # a new key: a clear may leave an old key's lock file behind
        entry = store.prepare_entry("pkg.Tool", key)
        for index in range(BIG_FILES):
            Path(entry, f"part{index}").write_bytes(b"")
        store.publish(entry, {"layout": 1, "key": key})
        lock = Path(store.lock_path("pkg.Tool", key))
        assert not lock.exists()
        runs = []
        for number, args in enumerate(READERS):
            ready = tmp_path / f"ready-{round_}-{number}"
            delay = str(0.002 * number)
            argv = [sys.executable, "-c", READER, str(ready), str(lock), delay, *args]
            runs.append((args, _start(argv), ready))
        deadline = time.monotonic() + 30
        while not all(ready.exists() for _args, _proc, ready in runs):
            assert time.monotonic() < deadline, "the readers never got ready"
            time.sleep(0.01)
        first = ["clear", "--all", "-q"]
        runs.append((first, _start([sys.executable, "-m", "imcache", *first]), tmp_path))
        for args, proc, _ready in runs:
            _stdout, stderr = proc.communicate(timeout=60)
            if proc.returncode != 0:
                failures.append(
                    f"round {round_}: imcache {' '.join(args)}: exit {proc.returncode}\n{stderr}"
                )
        if failures:
            break
        assert not Path(entry).exists(), "clear --all left the entry"
    assert not failures, "\n".join(failures)
