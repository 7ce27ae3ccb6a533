"""Promise 1, "Exactly once": however many processes ask for one key at the same moment, the
tool runs once, and every one of them gets the outputs of that one run.

Everything here is real: separate processes, real files, real POSIX locks and the real mrcat.
The only stand-in is a small shell script named `mrcat`, first on PATH, that records each call
(its pid, one line) and then execs the real mrcat, after a sleep when a test needs the runs to
overlap for sure (a real run takes a few milliseconds). Its behaviour is set by environment
variables that are not part of the key (`IMT_*`), so one wrapper serves every run of a test
and every run of a test has the same key.

Processes that must start together import imcache first, say they are ready, wait for a start
file, and only then call the CLI (`cli.main`, which is what `python -m imcache` runs): Python's
start-up is paid before the start, so the runs really meet at the lock.

The helpers (`FakeMrcat`, `Spawn`, ...) are shared with test_crash.py, which imports them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.conftest import first_on_path, require_tool

MRCAT = "mrtrix3.MRCat"
WAITING = "another process is running this key"
MakeNifti = Callable[..., Path]

# Sleep in the tool's own process, then become the real mrcat: one pid from start to end, so a
# signal sent to that pid reaches the whole tool. Ctrl-C ends it as it ends a C program (killed
# by SIGINT, no Python traceback).
SLEEP_THEN_EXEC = """import os, signal, sys, time
try:
    time.sleep(float(sys.argv[1]))
except KeyboardInterrupt:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
os.execv(sys.argv[2], sys.argv[2:])
"""

WRAPPER = """#!/bin/sh
# mrcat for the tests: records its pid, then does what IMT_MODE says.
echo $$ >> '{calls}'
real='{real}'
case "${{IMT_MODE:-run}}" in
  run)
    if [ -n "$IMT_IGNORE_INT" ]; then trap '' INT; fi
    if [ "${{IMT_SLEEP:-0}}" = 0 ]; then exec "$real" "$@"; fi
    exec '{python}' -S -c '{sleep_then_exec}' "$IMT_SLEEP" "$real" "$@" ;;
  fail)
    "$real" "$@" || exit $?
    printf '%s' "$IMT_PARTIAL" >&2
    exit 3 ;;
  fill)
    "$real" -quiet "$@" || exit $?
    dd if=/dev/zero of="$IMT_FILLER" bs=4096 2>/dev/null
    truncate -s "-$((4096 * ${{IMT_LEAVE:-0}}))" "$IMT_FILLER"
    exit 0 ;;
  extras)
    "$real" "$@" || exit $?
    mkdir "$IMT_EXTRAS" || exit 1
    i=0
    while [ "$i" -lt "$IMT_COUNT" ]; do : > "$IMT_EXTRAS/f$i"; i=$((i + 1)); done
    exit 0 ;;
  noisy)
    dd if=/dev/zero of="$IMT_FILLER" bs=4096 2>/dev/null
    head -c "$IMT_NOISE" /dev/zero | tr '\\0' '.' >&2
    exec "$real" "$@" ;;
esac
echo "mrcat wrapper: unknown IMT_MODE $IMT_MODE" >&2
exit 99
"""


@dataclass(frozen=True)
class FakeMrcat:
    """The wrapper named `mrcat` first on PATH, and what it recorded."""

    real: str
    calls_file: Path

    def pids(self) -> list[int]:
        if not self.calls_file.exists():
            return []
        text = self.calls_file.read_text()
        return [int(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def calls(self) -> int:
        return len(self.pids())

    def wait_for_call(self, number: int, timeout: float = 20.0) -> int:
        """The pid of the `number`-th call (1-based), once it has started."""
        deadline = time.monotonic() + timeout
        while len(pids := self.pids()) < number:
            if time.monotonic() > deadline:
                pytest.fail(f"mrcat was not called {number} times in {timeout} s: {pids}")
            time.sleep(0.001)
        return pids[number - 1]

    def env(self, **settings: object) -> dict[str, str]:
        """The environment for an imcache process: ours plus IMT_* settings for the wrapper."""
        return {**os.environ, **{f"IMT_{k.upper()}": str(v) for k, v in settings.items()}}


@pytest.fixture
def fake_mrcat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeMrcat:
    real = require_tool("mrcat")
    calls = tmp_path / "mrcat-calls"
    script = WRAPPER.format(
        calls=calls, real=real, python=sys.executable, sleep_then_exec=SLEEP_THEN_EXEC
    )
    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": script})
    return FakeMrcat(real, calls)


@dataclass
class Proc:
    """A process we started in its own session (its pid is its process group's id)."""

    name: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def signal_group(self, signum: int) -> None:
        """As a terminal does: to the process and everything it started (the tool too)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def wait(self, timeout: float) -> int:
        """Its exit code; a failure (after killing its group) if it is still running then."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.popen.wait(timeout=10)
            pytest.fail(f"{self.name} still ran after {timeout} s; stderr:\n{self.stderr()}")

    def json(self) -> dict[str, Any]:
        data = json.loads(self.stdout())
        assert isinstance(data, dict)
        return data

    def describe(self) -> str:
        code = self.popen.returncode
        return f"{self.name}: exit {code}\nstdout:\n{self.stdout()}\nstderr:\n{self.stderr()}"

    def wait_for_stderr(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if time.monotonic() > deadline or self.popen.poll() is not None:
                pytest.fail(f"{self.name} never printed {text!r}:\n{self.describe()}")
            time.sleep(0.005)


class Spawn(Protocol):
    def __call__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc: ...


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start processes in new sessions, output to files; whatever is left is killed at the end."""
    logs = tmp_path / "logs"
    logs.mkdir()
    started: list[Proc] = []

    def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> Proc:
        out, err = logs / f"{name}.out", logs / f"{name}.err"
        with open(out, "wb") as out_file, open(err, "wb") as err_file:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out_file,
                stderr=err_file,
                env=env,
                start_new_session=True,
            )
        proc = Proc(name, popen, out, err)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.signal_group(signal.SIGKILL)  # a no-op for groups that have ended
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=10)


def imcache_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "imcache", *args]


def run_args(*inputs: str, out: str = "merged.nii") -> list[str]:
    return ["run", MRCAT, "--in-files", *inputs, "--axis", "3", "--out-file", out]


LAUNCHER = r"""
import os, sys, time

from imcache.cli.main import cli
import imcache.cli.run_cmd, imcache.core.run  # paid before the start, not after

go, ready, args = sys.argv[1], sys.argv[2], sys.argv[3:]
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit(97)
    time.sleep(0.001)
cli.main(args, prog_name="imcache")
"""


@dataclass
class Barrier:
    """Processes that start `imcache ARGS` together, once all of them are ready."""

    folder: Path
    spawn: Spawn
    procs: list[Proc]

    def add(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        ready = self.folder / f"ready-{name}"
        argv = [sys.executable, "-c", LAUNCHER, str(self.folder / "go"), str(ready), *args]
        proc = self.spawn(name, argv, env)
        self.procs.append(proc)
        return proc

    def release(self, timeout: float = 60.0) -> float:
        """Wait until every process is ready, start them all; the monotonic start time."""
        deadline = time.monotonic() + timeout
        while not all((self.folder / f"ready-{p.name}").exists() for p in self.procs):
            for proc in self.procs:
                if proc.popen.poll() is not None:
                    pytest.fail(f"a process ended before the start:\n{proc.describe()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the processes were not ready within {timeout} s")
            time.sleep(0.01)
        started = time.monotonic()
        (self.folder / "go").touch()
        return started


@pytest.fixture
def barrier(tmp_path: Path, spawn: Spawn) -> Barrier:
    folder = tmp_path / "barrier"
    folder.mkdir()
    return Barrier(folder, spawn, [])


def check_concatenation(path: str | Path, *inputs: Path) -> None:
    """The output is a real NIfTI volume: the inputs' voxels stacked along axis 3."""
    import nibabel as nib
    import numpy as np

    def volume(name: str | Path) -> Any:
        image = nib.load(str(name))
        assert isinstance(image, nib.Nifti1Image), f"{name} is not a NIfTI-1 image"
        return np.asarray(image.get_fdata())

    merged = volume(path)
    sources = [volume(source) for source in inputs]
    assert merged.shape == (*sources[0].shape, len(inputs)), merged.shape
    for index, source in enumerate(sources):
        assert np.array_equal(merged[..., index], source), f"volume {index} differs"


def records(cache_root: Path) -> list[Path]:
    return sorted(cache_root.glob("*/*/imcache.json")) if cache_root.is_dir() else []


# --- one key, many processes ---------------------------------------------------------------


@dataclass
class Crowd:
    """16 runs of one key started at once, after they ended."""

    procs: list[Proc]
    results: list[dict[str, Any]]
    inputs: tuple[Path, Path]
    calls_before: int

    def waited(self) -> list[Proc]:
        return [proc for proc in self.procs if WAITING in proc.stderr()]


def sixteen_at_once(
    fake_mrcat: FakeMrcat, make_nifti: MakeNifti, barrier: Barrier, state: str
) -> Crowd:
    """Start 16 runs of one key together, the tool slowed to 1 s so that they surely overlap.
    `state`: "new key" (nothing cached), or "damaged entry" (a record whose output has since
    been overwritten with other bytes: it must be run again, once)."""
    inputs = make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)
    args = [*run_args("a.nii", "b.nii"), "--json"]
    if state == "damaged entry":
        first = subprocess.run(
            imcache_argv(*args), env=fake_mrcat.env(), capture_output=True, text=True, timeout=30
        )
        assert first.returncode == 0, first.stderr
        Path(json.loads(first.stdout)["outputs"]["out_file"]).write_bytes(b"overwritten")
    calls_before = fake_mrcat.calls()
    env = fake_mrcat.env(sleep=1.0)
    procs = [barrier.add(f"run{i:02}", args, env) for i in range(16)]
    barrier.release()
    codes = [proc.wait(timeout=60) for proc in procs]
    assert codes == [0] * 16, "\n\n".join(p.describe() for p in procs if p.popen.returncode)
    return Crowd(procs, [proc.json() for proc in procs], inputs, calls_before)


@pytest.mark.parametrize("state", ["new key", "damaged entry"])
def test_sixteen_processes_one_key_run_the_tool_once(
    state: str,
    fake_mrcat: FakeMrcat,
    make_nifti: MakeNifti,
    barrier: Barrier,
    cache_root: Path,
) -> None:
    """Promise 1: 16 processes started at once for one key (new, or whose entry is damaged and
    must be run again): the tool runs exactly once; all 16 exit 0 with the same output path,
    whose content is the right concatenation; exactly one reports cached=false; for a new key
    the 15 others say on stderr (once each) that they waited for it."""
    crowd = sixteen_at_once(fake_mrcat, make_nifti, barrier, state)
    calls = fake_mrcat.calls() - crowd.calls_before
    assert calls == 1, f"mrcat ran {calls} times for one key"
    cached = [result["cached"] for result in crowd.results]
    assert cached.count(False) == 1, cached
    paths = {result["outputs"]["out_file"] for result in crowd.results}
    assert len(paths) == 1, paths
    assert len({result["key"] for result in crowd.results}) == 1

    (path,) = paths
    check_concatenation(path, *crowd.inputs)
    assert [p.parent for p in records(cache_root)] == [Path(path).parent]
    assert not [p for p in Path(path).parent.parent.iterdir() if ".failed-" in p.name]

    for proc in crowd.waited():
        assert proc.stderr().count(WAITING) == 1, proc.describe()
    if state == "new key":
        runner = crowd.procs[cached.index(False)]
        assert WAITING not in runner.stderr(), runner.describe()
        # The tool sleeps 1 s and every process was past its start within a fraction of that.
        assert len(crowd.waited()) == 15, f"only {len(crowd.waited())} of 15 hits said they waited"


MARKING_MRCAT = """#!/bin/sh
# mrcat for the lock-free test: records its pid, leaves it in the folder it runs in, then runs
# the real mrcat a second later (so that every run overlaps every other).
echo $$ >> '{calls}'
echo $$ > ran-by.txt
sleep 1
exec '{real}' "$@"
"""


def test_eight_processes_without_locks_publish_one_entry_and_agree(
    make_nifti: MakeNifti,
    barrier: Barrier,
    cache_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 16: correctness never depends on the locks. 8 processes run one key with locking
    switched off (as on hosts whose locks are not shared): several run the tool, each in its own
    folder; one folder is published, whole (its record's digests are its files, the marker its
    one run left); every process is handed that entry's path and bytes; no run folder is left."""
    real = require_tool("mrcat")
    calls = tmp_path / "mrcat-calls"
    first_on_path(
        tmp_path / "bin", monkeypatch, {"mrcat": MARKING_MRCAT.format(calls=calls, real=real)}
    )
    inputs = make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)
    args = [*run_args("a.nii", "b.nii"), "--json"]
    env = {**os.environ, "IMCACHE_TEST_NO_LOCKS": "1"}
    procs = [barrier.add(f"free{i}", args, env) for i in range(8)]
    barrier.release()
    codes = [proc.wait(timeout=60) for proc in procs]
    assert codes == [0] * 8, "\n\n".join(p.describe() for p in procs if p.popen.returncode)
    runs = [int(line) for line in calls.read_text().split()]
    assert len(runs) >= 2, f"locking was not off: mrcat ran {len(runs)} times"
    print(f"8 processes without locks: mrcat ran {len(runs)} times")

    results = [proc.json() for proc in procs]
    paths = {result["outputs"]["out_file"] for result in results}
    assert len(paths) == 1, paths
    (path,) = paths
    entry = Path(path).parent
    assert entry.name == results[0]["key"] and ".run-" not in path
    assert [p.parent for p in records(cache_root)] == [entry]
    check_concatenation(path, *inputs)
    assert len({Path(path).read_bytes() for _ in results}) == 1
    # Not a mixed folder: the files are the ones its record lists, with its digests, and the
    # marker names one of the runs.
    record = json.loads((entry / "imcache.json").read_text())
    on_disk = {p.name for p in entry.iterdir()} - {"imcache.json", ".imcache-used"}
    assert on_disk == set(record["files"]), (on_disk, record["files"])
    assert int((entry / "ran-by.txt").read_text()) in runs
    verified = subprocess.run(
        imcache_argv("verify", "--json"), env=env, capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["damaged"] == []
    left = [p.name for p in entry.parent.iterdir() if p.name.startswith(entry.name + ".")]
    assert left == [], left  # every loser discarded its folder


def test_a_hit_that_must_wait_for_the_lock_says_so(
    fake_mrcat: FakeMrcat, make_nifti: MakeNifti, spawn: Spawn, cache_root: Path
) -> None:
    """Promise 1 (waiting is never silent): the key's entry is complete, but another process
    holds the key's lock exclusively (here the test itself, as a run re-checking the entry, a
    `clear` or a `verify --fix` re-reading it does). A run of that key must wait, and say so on
    stderr while it waits; once the lock is let go it hands back the entry (a hit)."""
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    args = [*run_args("a.nii", "b.nii"), "--json"]
    first = subprocess.run(
        imcache_argv(*args), env=fake_mrcat.env(), capture_output=True, text=True, timeout=30
    )
    assert first.returncode == 0, first.stderr
    (lock,) = (cache_root / MRCAT).glob("*.lock")
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        waiter = spawn("waiter", imcache_argv(*args), fake_mrcat.env())
        deadline = time.monotonic() + 3
        while WAITING not in waiter.stderr() and time.monotonic() < deadline:
            assert waiter.popen.poll() is None, waiter.describe()
            time.sleep(0.01)
        said = waiter.stderr()
    finally:
        os.close(fd)
    assert waiter.wait(timeout=20) == 0, waiter.describe()
    assert waiter.json()["cached"] is True
    assert fake_mrcat.calls() == 1
    assert WAITING in said, f"it waited 3 s for the lock without a word:\n{said}"


def test_different_keys_run_in_parallel(
    fake_mrcat: FakeMrcat, make_nifti: MakeNifti, barrier: Barrier
) -> None:
    """Promise 1, its other half: locks are per key, so runs of different keys never wait for
    each other: 4 keys whose tool takes 1.5 s each finish together, well under the 6 s that
    running them one after another would take, and none says it waited."""
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    seconds, keys = 1.5, 4
    env = fake_mrcat.env(sleep=seconds)
    procs = [
        barrier.add(f"key{i}", [*run_args("a.nii", "b.nii", out=f"k{i}.nii"), "--json"], env)
        for i in range(keys)
    ]
    started = barrier.release()
    codes = [proc.wait(timeout=60) for proc in procs]
    wall = time.monotonic() - started

    assert codes == [0] * keys, "\n\n".join(p.describe() for p in procs)
    assert fake_mrcat.calls() == keys
    results = [proc.json() for proc in procs]
    assert len({r["key"] for r in results}) == keys
    assert all(r["cached"] is False for r in results)
    for proc in procs:
        assert WAITING not in proc.stderr(), proc.describe()
    assert seconds <= wall < 0.6 * keys * seconds, f"{keys} runs of {seconds} s took {wall:.2f} s"


def test_when_the_runner_dies_exactly_one_waiter_takes_over(
    fake_mrcat: FakeMrcat, make_nifti: MakeNifti, spawn: Spawn, cache_root: Path
) -> None:
    """Promises 1 and 2: the process running a key is killed (-9, with its tool) while four
    others wait for it; its lock dies with it, exactly one waiter runs the tool again, and all
    four exit 0 with the same complete output."""
    a, b = make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)
    args = run_args("a.nii", "b.nii")
    runner = spawn("runner", imcache_argv(*args), fake_mrcat.env(sleep=60))
    fake_mrcat.wait_for_call(1)
    waiters = [
        spawn(f"waiter{i}", imcache_argv(*args, "--json"), fake_mrcat.env(sleep=0.3))
        for i in range(4)
    ]
    for waiter in waiters:
        waiter.wait_for_stderr(WAITING)
    assert fake_mrcat.calls() == 1

    runner.signal_group(signal.SIGKILL)
    assert runner.wait(timeout=10) == -signal.SIGKILL
    codes = [waiter.wait(timeout=30) for waiter in waiters]

    assert codes == [0] * 4, "\n\n".join(w.describe() for w in waiters)
    assert fake_mrcat.calls() == 2, "exactly one waiter must run the tool again"
    results = [waiter.json() for waiter in waiters]
    assert [r["cached"] for r in results].count(False) == 1
    paths = {r["outputs"]["out_file"] for r in results}
    assert len(paths) == 1, paths
    check_concatenation(paths.pop(), a, b)
    assert len(records(cache_root)) == 1


def test_ctrl_c_while_waiting_leaves_the_runner_alone(
    fake_mrcat: FakeMrcat, make_nifti: MakeNifti, spawn: Spawn, cache_root: Path
) -> None:
    """Promise 1: a process waiting for another's run can be interrupted (exit 130); the run it
    waited for goes on undisturbed, runs the tool once and is cached."""
    a, b = make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)
    args = run_args("a.nii", "b.nii")
    runner = spawn("runner", imcache_argv(*args, "--json"), fake_mrcat.env(sleep=1.5))
    fake_mrcat.wait_for_call(1)
    waiter = spawn("waiter", imcache_argv(*args), fake_mrcat.env())
    waiter.wait_for_stderr(WAITING)

    waiter.signal_group(signal.SIGINT)
    assert waiter.wait(timeout=10) == 130, waiter.describe()
    assert "imcache: interrupted" in waiter.stderr()
    assert "Traceback" not in waiter.stderr(), waiter.describe()
    assert waiter.stdout() == ""

    assert runner.wait(timeout=30) == 0, runner.describe()
    assert runner.json()["cached"] is False
    check_concatenation(runner.json()["outputs"]["out_file"], a, b)
    assert fake_mrcat.calls() == 1
    assert len(records(cache_root)) == 1
