"""Promise 2, "Crash safety": whatever kills a run (kill -9 of imcache or of its tool, Ctrl-C,
a tool that fails half-way, a full disk), the cache never holds an entry that looks complete
but is not, no lock outlives its process, and the next run of the key just works.

Real processes, real signals, real files, the real mrcat; where a failure needs a tool that
hangs, is slow, fails half-way or fills the disk, the `mrcat` wrapper of test_concurrency.py
(first on PATH, then exec'ing the real mrcat) plays it. Every wait has a timeout.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.core import test_concurrency as shared
from tests.core.test_concurrency import (
    MRCAT,
    WAITING,
    FakeMrcat,
    MakeNifti,
    Proc,
    Spawn,
    check_concatenation,
    imcache_argv,
    records,
    run_args,
)

fake_mrcat = shared.fake_mrcat  # the fixtures this module shares with test_concurrency.py
spawn = shared.spawn

ERROR = "imcache: error:"


def run_now(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """`python -m imcache ARGS` to its end (a failure, not a hang, if it takes too long)."""
    return subprocess.run(
        imcache_argv(*args), env=env, capture_output=True, text=True, timeout=timeout
    )


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...], or None if there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def started_at(pid: int) -> str:
    """The process's start time (clock ticks since boot): with the pid, who it is."""
    fields = _stat_fields(pid)
    assert fields is not None, f"process {pid} is gone already"
    return fields[19]


def alive(pid: int, start: str) -> bool:
    """Whether that process still runs (a zombie, dead but not yet reaped, does not)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[19] == start and fields[0] != "Z"


def wait_gone(pid: int, start: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def lock_state(lock: Path) -> str:
    """'exclusive', 'shared' or 'free': what another process could take right now."""
    fd = os.open(lock, os.O_RDWR)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return "free"
        except BlockingIOError:
            pass
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return "shared"
        except BlockingIOError:
            return "exclusive"
    finally:
        os.close(fd)


def error_lines(stderr: str) -> list[str]:
    """imcache's error messages (a tool's unfinished progress line may precede one)."""
    return [ERROR + line.partition(ERROR)[2] for line in stderr.splitlines() if ERROR in line]


def assert_one_clear_error(stderr: str) -> None:
    """A failure told to people in one message: no traceback, not reported as imcache's bug."""
    assert "Traceback" not in stderr, stderr
    assert "internal error" not in stderr, stderr
    assert stderr.count(ERROR) == 1, stderr


@pytest.fixture
def pair(make_nifti: MakeNifti) -> tuple[Path, Path]:
    return make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)


def only_lock(cache_root: Path) -> Path:
    (lock,) = (cache_root / MRCAT).glob("*.lock")
    return lock


# --- locks die with their process -----------------------------------------------------------


@pytest.mark.parametrize("victim", ["process group", "imcache alone"])
def test_a_killed_run_leaves_no_lock_behind(
    victim: str,
    fake_mrcat: FakeMrcat,
    pair: tuple[Path, Path],
    spawn: Spawn,
    cache_root: Path,
) -> None:
    """Promises 1 and 2: a run whose tool hangs holds its key's lock; `kill -9` of its process
    group (or of imcache alone, the tool living on as an orphan: the lock must not have leaked
    into it) frees the key at once, and the next run completes promptly without waiting."""
    args = run_args("a.nii", "b.nii")
    hung = spawn("hung", imcache_argv(*args), fake_mrcat.env(sleep=300))
    tool = fake_mrcat.wait_for_call(1)
    tool_start = started_at(tool)
    lock = only_lock(cache_root)
    assert lock_state(lock) == "exclusive"

    if victim == "process group":
        hung.signal_group(signal.SIGKILL)
    else:
        os.kill(hung.pid, signal.SIGKILL)
    assert hung.wait(timeout=10) == -signal.SIGKILL
    if victim == "process group":
        assert wait_gone(tool, tool_start), "the tool outlived its process group's SIGKILL"
    else:
        assert alive(tool, tool_start), "the orphaned tool should still be running"
    assert lock_state(lock) == "free"
    assert not records(cache_root)

    started = time.monotonic()
    again = run_now(*args, "--json", env=fake_mrcat.env(), timeout=20)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 20
    assert WAITING not in again.stderr
    assert json.loads(again.stdout)["cached"] is False
    assert fake_mrcat.calls() == 2
    check_concatenation(json.loads(again.stdout)["outputs"]["out_file"], *pair)
    hung.signal_group(signal.SIGKILL)  # the orphan, if any


HOLDER = r"""
import os, sys, time

from imcache.cli.main import cli

ready, args = sys.argv[1], sys.argv[2:]
try:
    cli.main(args, prog_name="imcache")
    code = 0
except SystemExit as done:
    code = done.code
sys.stdout.flush()
with open(ready + ".tmp", "w") as handle:
    handle.write(f"{code}\n")
os.replace(ready + ".tmp", ready)
time.sleep(300)
"""


def test_a_killed_hit_leaves_no_lock_behind(
    fake_mrcat: FakeMrcat,
    pair: tuple[Path, Path],
    spawn: Spawn,
    cache_root: Path,
    tmp_path: Path,
) -> None:
    """Promise 2: a process that got a hit holds a shared lock on the entry until it exits, and
    a `--force` run of that key waits for it; `kill -9` of the holder frees the key: the
    waiting `--force` run completes at once, and a later one does not wait at all."""
    args = run_args("a.nii", "b.nii")
    first = run_now(*args, "--get", "out_file", env=fake_mrcat.env())
    assert first.returncode == 0, first.stderr

    ready = tmp_path / "holder-ready"
    holder = spawn("holder", [sys.executable, "-c", HOLDER, str(ready), *args, "--get", "out_file"])
    deadline = time.monotonic() + 20
    while not ready.exists():
        assert holder.popen.poll() is None, holder.describe()
        assert time.monotonic() < deadline, "the holder never got its hit"
        time.sleep(0.01)
    assert ready.read_text() == "0\n", holder.describe()
    assert holder.stdout() == first.stdout, holder.describe()
    lock = only_lock(cache_root)
    assert lock_state(lock) == "shared"

    forced = spawn("forced", imcache_argv(*args, "--force", "--json"), fake_mrcat.env())
    forced.wait_for_stderr(WAITING)
    assert fake_mrcat.calls() == 1

    holder.signal_group(signal.SIGKILL)
    assert holder.wait(timeout=10) == -signal.SIGKILL
    assert forced.wait(timeout=20) == 0, forced.describe()
    assert forced.json()["cached"] is False
    assert fake_mrcat.calls() == 2

    started = time.monotonic()
    again = run_now(*args, "--force", "--json", env=fake_mrcat.env(), timeout=20)
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 20
    assert WAITING not in again.stderr
    assert fake_mrcat.calls() == 3
    check_concatenation(json.loads(again.stdout)["outputs"]["out_file"], *pair)


# --- kill -9 at random points -----------------------------------------------------------------

KEYS = [
    ("v0.nii", "v1.nii", "k0.nii"),
    ("v1.nii", "v2.nii", "k1.nii"),
    ("v2.nii", "v0.nii", "k2.nii"),
]


@dataclass(frozen=True)
class Reference:
    """One key's output, made by an uninterrupted run in a cache of its own."""

    args: list[str]
    key: str
    output: str  # the output's name in the entry
    content: bytes
    seconds: float  # how long the whole uninterrupted `imcache run` took


def references(make_nifti: MakeNifti, tmp_path: Path, env: dict[str, str]) -> list[Reference]:
    for seed in range(3):
        make_nifti(f"v{seed}.nii", seed=seed)
    made = []
    for first, second, out in KEYS:
        args = run_args(first, second, out=out)
        started = time.monotonic()
        done = run_now(*args, "--json", env={**env, "IMCACHE_BASE_DIR": str(tmp_path / "ref")})
        seconds = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        content = Path(data["outputs"]["out_file"]).read_bytes()
        made.append(Reference(args, data["key"], out, content, seconds))
    return made


def check_entry(entry: Path, reference: Reference, context: str) -> bool:
    """The invariant: a record that parses, whose outputs are all there at their recorded sizes
    and hold the reference's bytes; or no record at all. True if there is a record."""
    record_path = entry / "imcache.json"
    if not record_path.exists():
        return False
    text = record_path.read_text()
    try:
        record = json.loads(text)
    except ValueError:
        pytest.fail(f"{context}: a half-written record:\n{text[:500]}")
    assert record["key"] == reference.key, context
    outputs = record["outputs"]
    assert set(outputs) == {"out_file"}, context
    output = entry / outputs["out_file"]["path"]
    assert output.is_file(), f"{context}: the record names a missing output"
    assert output.stat().st_size == outputs["out_file"]["size"], context
    assert output.read_bytes() == reference.content, f"{context}: output differs from reference"
    return True


def check_records_parse(cache_root: Path, context: str) -> None:
    for path in cache_root.glob(f"{MRCAT}/*/imcache.json"):
        try:
            json.loads(path.read_text())
        except ValueError:
            pytest.fail(f"{context}: {path} does not parse")


def seed_for_this_run() -> int:
    seed = int(os.environ.get("IMCACHE_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"IMCACHE_TEST_SEED={seed}")
    return seed


def test_kill_9_at_random_points_never_leaves_a_false_entry(
    make_nifti: MakeNifti,
    spawn: Spawn,
    cache_root: Path,
    tmp_path: Path,
) -> None:
    """Promise 2: 60 runs (misses, and `--force` runs over a complete entry) of three keys, each
    killed with SIGKILL (imcache and its tool, the whole process group) after a random delay
    that covers a run's whole life. After each kill: every record parses; the key's entry has a
    record whose outputs are there at their sizes with the bytes of an uninterrupted reference
    run, or no record; the next normal run succeeds, is a hit exactly when a record was left,
    and hands back the reference's bytes. Set IMCACHE_TEST_SEED to replay a sequence."""
    require_tool("mrcat")  # the real one: no wrapper on PATH here
    seed = seed_for_this_run()
    rng = random.Random(seed)
    refs = references(make_nifti, tmp_path, dict(os.environ))
    lifetime = max(ref.seconds for ref in refs)
    outcomes: Counter[str] = Counter()
    previous: int | None = None
    for iteration in range(60):
        index = previous if previous is not None and rng.random() < 0.3 else rng.randrange(3)
        previous = index
        ref = refs[index]
        entry = cache_root / MRCAT / ref.key
        force = (entry / "imcache.json").exists() and rng.random() < 0.5
        if not force and entry.exists():
            shutil.rmtree(entry)  # make it a miss (nothing runs now: no lock needed)
        delay = rng.uniform(0, 1.2 * lifetime)
        context = f"seed {seed}, iteration {iteration}, key {index}, force {force}, {delay:.3f} s"

        victim = spawn(f"victim{iteration}", imcache_argv(*ref.args, *(["--force"] * force)))
        time.sleep(delay)
        victim.signal_group(signal.SIGKILL)
        code = victim.wait(timeout=20)
        check_records_parse(cache_root, context)
        had_record = check_entry(entry, ref, context)
        if code == 0:
            outcomes["finished before the kill"] += 1
            assert had_record, f"{context}: exit 0 without a record"
        elif had_record:
            outcomes["killed, the record (old or new) in place"] += 1
        elif list(entry.parent.glob(f"{ref.key}.run-*")):
            # Issue 16: a run fills its own folder, renamed onto the key once complete.
            assert not entry.exists(), f"{context}: an entry without a record"
            outcomes["killed mid-run: a run folder, no entry"] += 1
        else:
            outcomes["killed before any entry"] += 1

        after = run_now(*ref.args, "--json")
        assert after.returncode == 0, f"{context}: the next run failed:\n{after.stderr}"
        data = json.loads(after.stdout)
        assert data["cached"] is had_record, f"{context}: {data['cached']=}, {had_record=}"
        assert Path(data["outputs"]["out_file"]).read_bytes() == ref.content, context
        assert check_entry(entry, ref, context)
    print(f"seed {seed}, run lifetime {lifetime:.3f} s: {dict(outcomes)}")
    assert outcomes["killed mid-run: a run folder, no entry"] >= 1, (
        f"seed {seed}: no kill landed while a run was under way: {dict(outcomes)}"
    )


def test_kill_9_of_the_tool_fails_the_run_and_caches_nothing(
    fake_mrcat: FakeMrcat,
    make_nifti: MakeNifti,
    spawn: Spawn,
    cache_root: Path,
    tmp_path: Path,
) -> None:
    """Promise 2: the tool alone is killed (-9) at a random point of its life (a slow start,
    then the real mrcat): imcache exits 137 (128 + SIGKILL) with one error line, leaves no
    record, keeps the attempt as `<key>.failed-*`; the next run runs the tool again (no hit),
    hands back the reference bytes and removes the failed attempt."""
    seed = seed_for_this_run()
    rng = random.Random(seed)
    refs = references(make_nifti, tmp_path, fake_mrcat.env())
    landed = 0
    rounds = 20
    for iteration in range(rounds):
        ref = refs[rng.randrange(3)]
        entry = cache_root / MRCAT / ref.key
        force = (entry / "imcache.json").exists()
        slow = rng.uniform(0.02, 0.25)
        delay = rng.uniform(0, slow + 0.03)
        context = f"seed {seed}, iteration {iteration}, slow {slow:.3f} s, kill at {delay:.3f} s"

        calls = fake_mrcat.calls()
        victim = spawn(
            f"victim{iteration}",
            imcache_argv(*ref.args, *(["--force"] * force)),
            fake_mrcat.env(sleep=f"{slow:.3f}"),
        )
        tool = fake_mrcat.wait_for_call(calls + 1)
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.kill(tool, signal.SIGKILL)
        code = victim.wait(timeout=20)
        stderr = victim.stderr()
        failed = list(entry.parent.glob(f"{ref.key}.failed-*"))
        if code == 0:  # the tool had finished: the run is complete
            assert check_entry(entry, ref, context)
        else:
            landed += 1
            assert code == 128 + signal.SIGKILL, f"{context}:\n{stderr}"
            assert_one_clear_error(stderr)
            assert not (entry / "imcache.json").exists(), context
            assert len(failed) == 1, f"{context}: {failed}"
        check_records_parse(cache_root, context)

        after = run_now(*ref.args, "--json", env=fake_mrcat.env())
        assert after.returncode == 0, f"{context}:\n{after.stderr}"
        data = json.loads(after.stdout)
        assert data["cached"] is (code == 0), context
        assert fake_mrcat.calls() == calls + 1 + (code != 0), context
        assert Path(data["outputs"]["out_file"]).read_bytes() == ref.content, context
        assert not list(entry.parent.glob(f"{ref.key}.failed-*")), context
    assert landed >= rounds // 2, f"seed {seed}: only {landed} of {rounds} kills landed"


EXTRA_FILES = 3000


def entry_with_extras(fake_mrcat: FakeMrcat, args: list[str]) -> tuple[Path, str] | None:
    """A complete entry whose tool also wrote EXTRA_FILES files into a folder that the file
    system lists before the record (so that removing the entry removes them first); None if
    no folder name tried is listed so."""
    for attempt in range(8):
        folder = f"extras{attempt}"
        env = fake_mrcat.env(mode="extras", extras=folder, count=EXTRA_FILES)
        done = run_now(*args, *(["--force"] if attempt else []), env=env)
        assert done.returncode == 0, done.stderr
        entry = Path(json.loads(done.stdout)["work_dir"])
        listed = os.listdir(entry)
        if listed.index(folder) < listed.index("imcache.json"):
            return entry, folder
    return None


def missing_files(entry: Path) -> list[str]:
    """What the entry's record names (outputs and extra files) but the entry lacks."""
    record = json.loads((entry / "imcache.json").read_text())
    named = [item["path"] for item in record["outputs"].values()] + record["extra_files"]
    return [name for name in named if not (entry / name).exists()]


def kill_force_mid_removal(fake_mrcat: FakeMrcat, spawn: Spawn) -> tuple[Path, list[str]]:
    """Make a complete entry with EXTRA_FILES extra files, start `run --force` of its key and
    kill it (-9, process group) as soon as the old entry's files begin to go, or the old entry
    moves; the entry's path and the run's arguments."""
    args = [*run_args("a.nii", "b.nii"), "--json"]
    made = entry_with_extras(fake_mrcat, args)
    if made is None:
        pytest.skip("this file system lists an entry's record first: rmtree removes it first")
    entry, folder = made
    assert missing_files(entry) == []
    extras_env = fake_mrcat.env(mode="extras", extras=folder, count=EXTRA_FILES)
    victim = spawn("forced", imcache_argv(*args, "--force"), extras_env)
    deadline = time.monotonic() + 20
    while True:
        try:
            if len(os.listdir(entry / folder)) < EXTRA_FILES:
                break
        except FileNotFoundError:
            break
        assert victim.popen.poll() is None, f"the removal was not caught:\n{victim.describe()}"
        assert time.monotonic() < deadline, "the --force run never began removing the entry"
    victim.signal_group(signal.SIGKILL)
    assert victim.wait(timeout=10) == -signal.SIGKILL
    return entry, args


def test_a_kill_while_force_removes_the_old_entry_leaves_no_false_hit(
    fake_mrcat: FakeMrcat,
    pair: tuple[Path, Path],
    spawn: Spawn,
) -> None:
    """Promise 2: `run --force` over a complete entry whose tool wrote many files (3000, as
    dcm2niix or FreeSurfer do) is killed (-9, process group) while it removes the old entry.
    Afterwards the entry has no record, or a record whose every named file is still there; so
    the next run is never a hit that hands back paths of files that are gone."""
    entry, args = kill_force_mid_removal(fake_mrcat, spawn)
    left_over = missing_files(entry) if (entry / "imcache.json").exists() else []
    after = run_now(*args)
    assert after.returncode == 0, after.stderr
    data = json.loads(after.stdout)
    gone = [path for path in data["extra_files"] if not Path(path).exists()]
    assert not left_over, (
        f"after the kill the record names {len(left_over)} files that are gone "
        f"(e.g. {left_over[:3]}); the next run's cached={data['cached']}, "
        f"{len(gone)} of the extra files it handed back do not exist"
    )
    assert not gone, f"a hit names {len(gone)} extra files that are gone"
    check_concatenation(data["outputs"]["out_file"], *pair)


def test_the_next_run_sweeps_what_a_killed_force_left(
    fake_mrcat: FakeMrcat,
    pair: tuple[Path, Path],
    spawn: Spawn,
) -> None:
    """Promise 2 (and docs/lifecycle.md: leftovers of interrupted runs are swept by the next run
    of the same key): after `run --force` was killed half-way through removing the old entry,
    the next run of the key succeeds and leaves nothing of the old entry behind."""
    entry, args = kill_force_mid_removal(fake_mrcat, spawn)
    after = run_now(*args)
    assert after.returncode == 0, after.stderr
    key = entry.name
    left = sorted(p.name for p in entry.parent.iterdir() if p.name not in (key, f"{key}.lock"))
    assert not left, f"the next run of the key left {left}"


# --- Ctrl-C and other signals ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "signum", "tool_ignores_sigint"),
    [
        ("process group", signal.SIGINT, False),
        ("imcache alone", signal.SIGINT, False),
        ("process group", signal.SIGINT, True),
        ("process group", signal.SIGTERM, False),
        ("imcache alone", signal.SIGTERM, False),
    ],
    ids=["ctrl-c", "sigint-to-imcache", "tool-ignores-sigint", "ci-cancel", "sigterm-to-imcache"],
)
def test_a_signal_stops_the_tool_and_caches_nothing(
    target: str,
    signum: int,
    tool_ignores_sigint: bool,
    fake_mrcat: FakeMrcat,
    pair: tuple[Path, Path],
    spawn: Spawn,
    cache_root: Path,
) -> None:
    """Promise 2: SIGINT while the tool runs, sent to the whole process group as a terminal's
    Ctrl-C does, or to imcache alone (which must pass it on), or to a tool that ignores it
    (which imcache must then kill); or SIGTERM, to the group as a cancelled CI job does or to
    imcache alone: the tool ends, imcache exits 130 (SIGINT, "interrupted") or 143 (SIGTERM,
    one error line), nothing is cached (the next run is no hit) and the next run succeeds."""
    args = run_args("a.nii", "b.nii")
    settings: dict[str, object] = {"sleep": 60}
    if tool_ignores_sigint:
        settings["ignore_int"] = 1
    proc = spawn("interrupted", imcache_argv(*args), fake_mrcat.env(**settings))
    tool = fake_mrcat.wait_for_call(1)
    tool_start = started_at(tool)
    time.sleep(0.2)  # well inside the tool's run

    sent = time.monotonic()
    if target == "process group":
        proc.signal_group(signum)
    else:
        os.kill(proc.pid, signum)
    assert proc.wait(timeout=20) == 128 + signum, proc.describe()
    if not tool_ignores_sigint:  # the tool got the signal, from us or passed on: no grace period
        assert time.monotonic() - sent < 3.0, "imcache waited for a tool that had stopped"
    assert wait_gone(tool, tool_start, timeout=5), "the tool outlived imcache"
    stderr = proc.stderr()
    if signum == signal.SIGINT:
        assert "imcache: interrupted" in stderr, stderr
        assert "Traceback" not in stderr, stderr
    else:
        assert_one_clear_error(stderr)
        assert "SIGTERM" in error_lines(stderr)[0], stderr
    assert proc.stdout() == ""
    assert not records(cache_root)

    dry = run_now(*args, "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["cached"] is False, dry.stdout
    again = run_now(*args, "--json", env=fake_mrcat.env())
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cached"] is False
    assert fake_mrcat.calls() == 2
    check_concatenation(json.loads(again.stdout)["outputs"]["out_file"], *pair)


# --- a tool that fails half-way ---------------------------------------------------------------


def test_a_tool_failing_after_writing_outputs_caches_nothing(
    fake_mrcat: FakeMrcat,
    pair: tuple[Path, Path],
    cache_root: Path,
) -> None:
    """Promise 2: the tool writes its (complete, valid) output, then exits 3. imcache exits 3,
    caches nothing, keeps the attempt as `<key>.failed-*` for inspection; the next run of the
    key runs the tool again and removes that attempt."""
    args = run_args("a.nii", "b.nii")
    failed_run = run_now(*args, env=fake_mrcat.env(mode="fail"))
    assert failed_run.returncode == 3, failed_run.stderr
    assert_one_clear_error(failed_run.stderr)
    assert "failed with exit code 3" in failed_run.stderr
    assert failed_run.stdout == ""
    assert fake_mrcat.calls() == 1
    assert not list(cache_root.rglob("imcache.json"))
    interface = cache_root / MRCAT
    (kept,) = [p for p in interface.iterdir() if ".failed-" in p.name]
    key = kept.name.partition(".failed-")[0]
    assert not (interface / key).exists()
    check_concatenation(kept / "merged.nii", *pair)  # the output was there: still not cached
    assert (kept / "stderr.txt").is_file()

    dry = run_now(*args, "--dry-run", "--json")
    assert json.loads(dry.stdout)["cached"] is False

    again = run_now(*args, "--json", env=fake_mrcat.env())
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cached"] is False
    assert fake_mrcat.calls() == 2
    assert not kept.exists(), "the next run of the key removes the failed attempt"
    assert sorted(p.name for p in interface.iterdir()) == [key, f"{key}.lock"]


def test_the_error_starts_a_line_of_its_own(fake_mrcat: FakeMrcat, pair: tuple[Path, Path]) -> None:
    """Promise 2 (failures are told clearly): a tool that fails with an unfinished progress line
    on stderr (no newline at its end, as mrcat's progress bar when the disk fills up) must not
    swallow imcache's message: `imcache: error: ...` still starts a line of its own."""
    args = run_args("a.nii", "b.nii")
    failed = run_now(*args, env=fake_mrcat.env(mode="fail", partial="mrcat: [ 50%] writing..."))
    assert failed.returncode == 3, failed.stderr
    assert_one_clear_error(failed.stderr)
    starting = [line for line in failed.stderr.splitlines() if line.startswith(ERROR)]
    assert len(starting) == 1, f"the error is not on a line of its own:\n{failed.stderr}"


# --- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount small tmpfs file systems (root only); each is unmounted at the end, come what may."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"tmpfs{len(mounted)}"
        point.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no `mount` command here")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            if os.geteuid() != 0:
                pytest.skip(f"mounting a tmpfs needs root: {done.stderr.strip()}")
            pytest.fail(f"mount failed as root: {done.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        if subprocess.run(["umount", str(point)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)


def fill(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        handle.write(b"\0" * size)


@pytest.fixture
def big_pair(make_nifti: MakeNifti) -> tuple[Path, Path]:
    """Two 1 MiB volumes: their concatenation takes 2 MiB."""
    shape = (64, 64, 64)
    return make_nifti("big1.nii", seed=1, shape=shape), make_nifti("big2.nii", seed=2, shape=shape)


def start_on_full_disk(
    tmpfs: Callable[[str], Path], env: dict[str, str]
) -> tuple[Path, list[str], subprocess.CompletedProcess[str]]:
    """A 4 MiB cache file system with 3 MiB taken: the 2 MiB output cannot fit."""
    base = tmpfs("4m")
    fill(base / "filler", 3 * 1024 * 1024)
    args = [*run_args("big1.nii", "big2.nii"), "--json"]
    done = run_now(*args, env={**env, "IMCACHE_BASE_DIR": str(base)})
    return base, args, done


def test_an_output_that_does_not_fit_fails_cleanly(
    big_pair: tuple[Path, Path], tmpfs: Callable[[str], Path]
) -> None:
    """Promise 2: the disk fills up while the real mrcat writes its output: imcache fails with
    one clear error line (the tool's failure or the full cache), no traceback, no record."""
    base, _args, done = start_on_full_disk(tmpfs, dict(os.environ))
    assert not records(base / "imcache_mem")
    assert done.stdout == ""
    assert done.returncode not in (0, 3), done.stderr  # 3 would say: a bug in imcache
    assert_one_clear_error(done.stderr)


def test_after_a_full_disk_the_next_run_succeeds(
    big_pair: tuple[Path, Path], tmpfs: Callable[[str], Path]
) -> None:
    """Promise 2: a run that failed on a full disk leaves no record (no hit); once space is
    freed, the next run of the key runs again and succeeds."""
    env = dict(os.environ)
    base, args, done = start_on_full_disk(tmpfs, env)
    assert done.returncode != 0, done.stderr
    assert not records(base / "imcache_mem")

    (base / "filler").unlink()
    again = run_now(*args, env={**env, "IMCACHE_BASE_DIR": str(base)})
    assert again.returncode == 0, again.stderr
    data = json.loads(again.stdout)
    assert data["cached"] is False
    check_concatenation(data["outputs"]["out_file"], *big_pair)


def test_when_the_record_does_not_fit_nothing_half_written_is_left(
    fake_mrcat: FakeMrcat,
    pair: tuple[Path, Path],
    tmpfs: Callable[[str], Path],
) -> None:
    """Promise 2: the tool writes its output, then another process fills the disk, leaving 0,
    1, 2 or 3 pages free: the output fits but imcache's mark and record may not (with one
    page the mark fits and the record does not). Each run either succeeds with a valid
    record, or fails with one clear error (exit 1), no traceback, no record and no temporary
    record left; with room again, the same key then runs and succeeds."""
    base = tmpfs("2m")
    env = {**fake_mrcat.env(), "IMCACHE_BASE_DIR": str(base)}
    root = base / "imcache_mem"
    warm = run_now(*run_args("a.nii", "b.nii", out="warm.nii"), env=env)
    assert warm.returncode == 0, warm.stderr  # the cache's own files exist before the squeeze
    filler = base / "filler"
    outcomes = []
    for pages in range(4):
        args = [*run_args("a.nii", "b.nii", out=f"p{pages}.nii"), "--json"]
        squeeze = {**env, "IMT_MODE": "fill", "IMT_FILLER": str(filler), "IMT_LEAVE": str(pages)}
        done = run_now(*args, env=squeeze)
        key = json.loads(run_now(*args, "--dry-run", env=env).stdout)["key"]
        entry = root / MRCAT / key
        context = f"{pages} pages left: exit {done.returncode}\n{done.stderr}"
        if done.returncode == 0:
            outcomes.append("ok")
            record = json.loads((entry / "imcache.json").read_text())
            assert record["outputs"]["out_file"]["path"] == f"p{pages}.nii", context
        else:
            assert done.returncode == 1, context
            assert_one_clear_error(done.stderr)
            assert "No space left on device" in done.stderr, context
            # The attempt stays in place or is moved aside; either way it has no record.
            attempts = [p for p in entry.parent.glob(f"{key}*") if p.is_dir()]
            assert len(attempts) == 1, f"{context}\n{attempts}"
            assert not list(attempts[0].glob("imcache.json*")), context
            check_concatenation(attempts[0] / f"p{pages}.nii", *pair)  # the output did fit
            mark = attempts[0] / ".imcache-used"  # written just before the record
            fitted = mark.exists() and mark.stat().st_size > 0
            outcomes.append("failed at the record" if fitted else "failed before the record")
        filler.unlink()
        again = run_now(*args, env=env)
        assert again.returncode == 0, f"{context}\nthen: {again.stderr}"
        assert json.loads(again.stdout)["cached"] is (done.returncode == 0), context
    assert "failed at the record" in outcomes, f"the squeeze never hit the record: {outcomes}"
    assert outcomes[-1] == "ok", outcomes


def test_a_verbose_tool_on_a_full_disk_does_not_hang(
    fake_mrcat: FakeMrcat,
    pair: tuple[Path, Path],
    tmpfs: Callable[[str], Path],
    spawn: Spawn,
) -> None:
    """Promise 2: the disk is full when a tool prints 300 kB of messages and then fails to write
    its output: imcache must still drain the tool's output, end with one clear error (no
    traceback, no hang) and cache nothing."""
    base = tmpfs("1m")
    env = {
        **fake_mrcat.env(mode="noisy", filler=base / "filler", noise=300_000),
        "IMCACHE_BASE_DIR": str(base),
    }
    proc: Proc = spawn("verbose", imcache_argv(*run_args("a.nii", "b.nii")), env)
    code = proc.wait(timeout=8)
    assert code not in (0, 3), proc.describe()
    assert_one_clear_error(proc.stderr())
    assert not records(base / "imcache_mem")
