"""Promise 3: outputs are cached only for inputs that stayed what imcache hashed.

An input is stat'ed (device, inode, size, mtime, ctime) when it is hashed. If it changes while
imcache reads it, imcache stops before running anything; if it changes while the tool runs, the
outputs belong to no key: imcache exits 1, keeps the attempt aside as `<key>.failed-*` and
writes no record, so the next run (with the input stable) runs again and caches.

"While the tool runs" is made certain, not likely: the programs first on PATH here are small
wrappers that count their calls and, when IMCACHE_TEST_HANDSHAKE names a folder, write
`started` there and wait for `go` before doing the real work (a slow tool is a legitimate use of a
wrapper). The test changes the input between the two, so no sleep decides the outcome. mrcat is
the real MRtrix3 program behind its wrapper.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import imcache.core.hashing as hashing
from tests.conftest import first_on_path, imcache, require_tool, run_json

MRCAT = "mrtrix3.MRCat"
LISTER = "imcache-test-listfolder"  # the folder-listing tool of the test catalogue
HANDSHAKE = "IMCACHE_TEST_HANDSHAKE"
WAIT_S = 20.0  # the longest a handshake step or a subprocess may take
MakeNifti = Callable[..., Path]

WRAPPER = """#!/bin/sh
echo x >> "@COUNTER@"
if [ -n "$IMCACHE_TEST_HANDSHAKE" ]; then
    : > "$IMCACHE_TEST_HANDSHAKE/started"
    i=0
    while [ ! -e "$IMCACHE_TEST_HANDSHAKE/go" ] && [ "$i" -lt 400 ]; do
        sleep 0.05
        i=$((i + 1))
    done
fi
@BODY@
"""


@dataclass(frozen=True)
class Tools:
    """The wrappers put first on PATH, and how often each has been called."""

    folder: Path

    def calls(self, name: str) -> int:
        counter = self.folder / f"{name}.calls"
        return len(counter.read_text().splitlines()) if counter.exists() else 0


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tools:
    """`mrcat` (the real one, after the handshake) and the folder lister, first on PATH."""
    real = require_tool("mrcat")
    folder = tmp_path / "slow-bin"
    bodies = {"mrcat": f'exec "{real}" "$@"', LISTER: 'ls -laR "$1" > "$2"'}
    scripts = {
        name: WRAPPER.replace("@COUNTER@", str(folder / f"{name}.calls")).replace("@BODY@", body)
        for name, body in bodies.items()
    }
    return Tools(first_on_path(folder, monkeypatch, scripts))


@dataclass
class SlowRun:
    """`python -m imcache ...` in a subprocess whose tool waits, once started, for `go()`."""

    process: subprocess.Popen[str]
    handshake: Path

    def wait_started(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while not (self.handshake / "started").exists():
            if self.process.poll() is not None:
                out, err = self.process.communicate(timeout=WAIT_S)
                pytest.fail(f"imcache ended before its tool started:\n{out}\n{err}")
            if time.monotonic() > deadline:
                pytest.fail(f"the tool did not start within {WAIT_S} s")
            time.sleep(0.01)

    def finish(self) -> subprocess.CompletedProcess[str]:
        (self.handshake / "go").touch()
        out, err = self.process.communicate(timeout=WAIT_S)
        return subprocess.CompletedProcess(self.process.args, self.process.returncode, out, err)


@pytest.fixture
def slow_run(tmp_path: Path) -> Iterator[Callable[..., SlowRun]]:
    started: list[SlowRun] = []

    def start(*args: str) -> SlowRun:
        handshake = tmp_path / f"handshake-{len(started)}"
        handshake.mkdir()
        process = subprocess.Popen(
            [sys.executable, "-m", "imcache", *args],
            env={**os.environ, HANDSHAKE: str(handshake)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = SlowRun(process, handshake)
        started.append(run)
        return run

    yield start
    for run in started:  # only the processes this test started, each by its own handle
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate(timeout=WAIT_S)


def records(cache_root: Path) -> list[Path]:
    return sorted(cache_root.rglob("imcache.json")) if cache_root.exists() else []


def failed_attempts(cache_root: Path) -> list[Path]:
    return sorted(cache_root.glob("*/*.failed-*")) if cache_root.exists() else []


def assert_stable_run_caches(args: list[str], failed_key: str, tool: str, tools: Tools) -> None:
    """With the input back as it was hashed, the key of the refused attempt runs, then hits."""
    calls = tools.calls(tool)
    first = run_json(*args)
    assert first["cached"] is False, "a refused attempt must leave nothing to hit"
    assert first["key"] == failed_key
    assert tools.calls(tool) == calls + 1
    second = run_json(*args)
    assert second["cached"] is True
    assert tools.calls(tool) == calls + 1


# --- (a) an input file changes while the tool runs ----------------------------------------------


def _rewrite(path: Path, make_nifti: MakeNifti) -> None:
    size = path.stat().st_size
    make_nifti(path.name, seed=99)  # other voxels, same size, same inode
    assert path.stat().st_size == size


def _touch(path: Path, make_nifti: MakeNifti) -> None:
    info = path.stat()
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 5_000_000_000))


def _replace(path: Path, make_nifti: MakeNifti) -> None:
    before = path.stat()
    copy = path.with_name(f"{path.name}.copy")
    shutil.copy2(path, copy)  # the same bytes and mtime; another inode
    os.replace(copy, path)
    after = path.stat()
    assert after.st_ino != before.st_ino
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


FILE_CHANGES: dict[str, Callable[[Path, MakeNifti], None]] = {
    "rewritten with other content": _rewrite,
    "mtime touched": _touch,
    "replaced by a rename, same content": _replace,
}


@pytest.mark.parametrize("change", list(FILE_CHANGES.values()), ids=list(FILE_CHANGES))
def test_input_changed_while_the_tool_runs(
    change: Callable[[Path, MakeNifti], None],
    tools: Tools,
    slow_run: Callable[..., SlowRun],
    make_nifti: MakeNifti,
    cache_root: Path,
) -> None:
    """Promise 3: outputs made while an input changed are refused, and nothing is cached."""
    a = make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    original = a.read_bytes()
    args = ["run", MRCAT, "--in-files", "a.nii", "b.nii", "--axis", "3", "--out-file", "m.nii"]

    run = slow_run(*args)
    run.wait_started()
    change(a, make_nifti)
    done = run.finish()

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"input '{a}' changed while mrcat ran" in done.stderr, done.stderr
    assert "not cached" in done.stderr
    assert done.stdout == "", "a refused run prints no result"
    assert tools.calls("mrcat") == 1
    assert records(cache_root) == [], "no record: nothing for a later run to hit"
    failed = failed_attempts(cache_root)
    assert len(failed) == 1, failed
    assert (failed[0] / "m.nii").is_file(), "the attempt is kept aside for inspection"
    failed_key = failed[0].name.split(".")[0]
    assert not (failed[0].parent / failed_key).exists()

    if a.read_bytes() != original:
        a.write_bytes(original)  # the content imcache hashed: the refused attempt's key
    assert_stable_run_caches(args, failed_key, "mrcat", tools)
    assert failed_attempts(cache_root) == [], "the next run of the key clears the attempt"


# --- (b) an input changes while imcache hashes it -----------------------------------------------

WRITER = r"""
import os, sys, time
path, ready, stop = sys.argv[1:4]
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
os.write(fd, b"x")
open(ready, "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(stop) and time.monotonic() < deadline:
    os.write(fd, b"x")
    time.sleep(0.001)
"""


def test_input_appended_to_while_hashed_by_a_writer(
    tools: Tools, make_nifti: MakeNifti, tmp_path: Path, cache_root: Path
) -> None:
    """Promise 3: a big input another process keeps appending to is refused; nothing runs.

    The writer appends a byte every millisecond for as long as imcache runs, and hashing 300 MB
    takes tens of milliseconds at least, so the change lands inside the hashing window."""
    make_nifti("a.nii", seed=1)
    big = tmp_path / "work" / "big.bin"
    with open(big, "wb"):
        pass
    os.truncate(big, 300 * 1024 * 1024)  # sparse: 300 MB to read, no disk written
    ready, stop = tmp_path / "writer-ready", tmp_path / "writer-stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(big), str(ready), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not ready.exists():
            assert writer.poll() is None, writer.communicate(timeout=WAIT_S)
            assert time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.01)
        done = subprocess.run(
            [sys.executable, "-m", "imcache", "run", MRCAT, "--in-files", "a.nii", "big.bin"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop.touch()
        try:
            writer.communicate(timeout=WAIT_S)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.communicate(timeout=WAIT_S)
        big.unlink()

    assert done.returncode == 1, done.stderr
    assert f"input '{big}' changed while imcache was reading it" in done.stderr, done.stderr
    assert "nothing was run or cached" in done.stderr
    assert done.stdout == ""
    assert tools.calls("mrcat") == 0, "nothing may run on an input that has no one content"
    assert not cache_root.exists() or list(cache_root.glob("*/*")) == []


def fine_grained_timestamps(folder: Path) -> bool:
    """Whether a write right after a stat always moves mtime (Linux multigrain timestamps)."""
    probe = folder / "timestamp-probe"
    probe.write_bytes(b"a")
    try:
        for turn in range(20):
            before = os.stat(probe)
            with open(probe, "r+b") as handle:
                handle.write(b"b" if turn % 2 else b"c")
            if os.stat(probe).st_mtime_ns == before.st_mtime_ns:
                return False
        return True
    finally:
        probe.unlink()


def _append(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"x")


def _flip_first_byte(path: Path) -> None:
    with open(path, "r+b") as handle:
        first = handle.read(1)
        handle.seek(0)
        handle.write(bytes([first[0] ^ 0xFF]))


def _rename_over(path: Path) -> None:
    copy = path.with_name(f"{path.name}.copy")
    shutil.copy2(path, copy)
    os.replace(copy, path)


HASH_TIME_CHANGES: dict[str, Callable[[Path], None]] = {
    "appended to": _append,
    "same size, one byte rewritten": _flip_first_byte,
    "replaced by a rename, same content": _rename_over,
}


@pytest.mark.parametrize("change", list(HASH_TIME_CHANGES.values()), ids=list(HASH_TIME_CHANGES))
def test_input_changed_between_read_and_check(
    change: Callable[[Path], None],
    tools: Tools,
    make_nifti: MakeNifti,
    monkeypatch: pytest.MonkeyPatch,
    cache_root: Path,
    tmp_path: Path,
) -> None:
    """Promise 3: a change right after imcache read an input, before its check, is refused.

    Deterministic: digest_file is wrapped to change the input once its bytes have been read."""
    if change is _flip_first_byte and not fine_grained_timestamps(tmp_path):
        pytest.skip(
            "this kernel keeps coarse timestamps: a same-size rewrite within one tick is "
            "invisible to any stat"
        )
    a = make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    original = hashing.digest_file
    changed: list[str] = []

    def digest_then_change(path: str, size: int | None = None) -> str:
        digest: str = original(path, size)
        if path == str(a) and not changed:
            change(a)
            changed.append(path)
        return digest

    monkeypatch.setattr(hashing, "digest_file", digest_then_change)
    result = imcache("run", MRCAT, "--in-files", "a.nii", "b.nii", "--axis", "3")
    assert changed == [str(a)], "the wrapper must have run"
    assert result.exit_code == 1, result.stderr
    assert f"input '{a}' changed while imcache was reading it" in result.stderr
    assert result.stdout == ""
    assert tools.calls("mrcat") == 0
    assert not cache_root.exists() or list(cache_root.glob("*/*")) == []

    monkeypatch.setattr(hashing, "digest_file", original)
    make_nifti("a.nii", seed=1)  # a valid image again, for the stable run
    assert run_json("run", MRCAT, "--in-files", "a.nii", "b.nii", "--axis", "3")["cached"] is False
    assert tools.calls("mrcat") == 1


# --- (c) an input folder ------------------------------------------------------------------------


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """`test.ListFolder`: a File input given a folder (the loader has no Directory type; a File
    input may name a folder, hashed as its whole tree), listed by the slow lister."""
    folder = tmp_path / "catalogue"
    (folder / "test").mkdir(parents=True)
    definition = {
        "name": LISTER,
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "list a folder's tree",
        "command-line": f"{LISTER} [FOLDER] [OUT]",
        "inputs": [
            {"id": "folder", "name": "folder", "type": "File", "value-key": "[FOLDER]"},
            {
                "id": "out",
                "name": "out",
                "type": "String",
                "optional": True,
                "default-value": "listing.txt",
                "value-key": "[OUT]",
            },
        ],
        "output-files": [{"id": "listing", "name": "listing", "path-template": "[OUT]"}],
    }
    (folder / "test" / "ListFolder.json").write_text(json.dumps(definition, indent=2))
    return folder


@pytest.fixture
def data(isolated: Path) -> Path:
    """work/data with a file at the top and one in a subfolder."""
    folder = isolated / "data"
    (folder / "sub").mkdir(parents=True)
    (folder / "top.txt").write_text("top\n")
    (folder / "sub" / "deep.txt").write_text("deep\n")
    return folder


@dataclass(frozen=True)
class FolderChange:
    change: Callable[[Path], None]  # applied to the data folder while the tool runs
    restore: Callable[[Path], None]  # back to the hashed content (not the same stat)
    culprit: str  # the path, relative to the data folder, the message must name ("" : itself)


def _write(relative: str, text: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        (folder / relative).write_text(text)

    return write


def _remove(relative: str) -> Callable[[Path], None]:
    def remove(folder: Path) -> None:
        (folder / relative).unlink()

    return remove


def _mkdir(relative: str) -> Callable[[Path], None]:
    def mkdir(folder: Path) -> None:
        (folder / relative).mkdir()

    return mkdir


def _rmdir(relative: str) -> Callable[[Path], None]:
    def rmdir(folder: Path) -> None:
        (folder / relative).rmdir()

    return rmdir


FOLDER_CHANGES: dict[str, FolderChange] = {
    "file added at the top": FolderChange(_write("new.txt", "new\n"), _remove("new.txt"), ""),
    "file removed at the top": FolderChange(
        _remove("top.txt"), _write("top.txt", "top\n"), "top.txt"
    ),
    "file in a subfolder rewritten": FolderChange(
        _write("sub/deep.txt", "DEEP\n"), _write("sub/deep.txt", "deep\n"), "sub/deep.txt"
    ),
    "file removed from a subfolder": FolderChange(
        _remove("sub/deep.txt"), _write("sub/deep.txt", "deep\n"), "sub/deep.txt"
    ),
}
NESTED_CHANGES: dict[str, FolderChange] = {
    "file added in a subfolder": FolderChange(
        _write("sub/new.txt", "new\n"), _remove("sub/new.txt"), "sub"
    ),
    "folder added in a subfolder": FolderChange(_mkdir("sub/more"), _rmdir("sub/more"), "sub"),
}


def _folder_case(
    case: FolderChange,
    tools: Tools,
    slow_run: Callable[..., SlowRun],
    catalogue: Path,
    data: Path,
    cache_root: Path,
) -> None:
    args = ["--interfaces", str(catalogue), "run", "test.ListFolder", "--folder", "data"]
    run = slow_run(*args)
    run.wait_started()
    case.change(data)
    done = run.finish()

    culprit = data / case.culprit if case.culprit else data
    assert done.returncode == 1, f"exit {done.returncode}: the change went unseen\n{done.stderr}"
    assert f"'{culprit}'" in done.stderr, done.stderr
    assert f"changed while {LISTER} ran" in done.stderr
    assert done.stdout == ""
    assert tools.calls(LISTER) == 1
    assert records(cache_root) == []
    failed = failed_attempts(cache_root)
    assert len(failed) == 1, failed

    case.restore(data)
    assert_stable_run_caches(args, failed[0].name.split(".")[0], LISTER, tools)


@pytest.mark.parametrize("case", list(FOLDER_CHANGES.values()), ids=list(FOLDER_CHANGES))
def test_input_folder_changed_while_the_tool_runs(
    case: FolderChange,
    tools: Tools,
    slow_run: Callable[..., SlowRun],
    catalogue: Path,
    data: Path,
    cache_root: Path,
) -> None:
    """Promise 3: a folder input whose tree changes while the tool runs is not cached."""
    _folder_case(case, tools, slow_run, catalogue, data, cache_root)


@pytest.mark.parametrize("case", list(NESTED_CHANGES.values()), ids=list(NESTED_CHANGES))
def test_input_subfolder_changed_while_the_tool_runs(
    case: FolderChange,
    tools: Tools,
    slow_run: Callable[..., SlowRun],
    catalogue: Path,
    data: Path,
    cache_root: Path,
) -> None:
    """Promise 3, deeper: adding or removing a file in a subfolder of a folder input counts too."""
    _folder_case(case, tools, slow_run, catalogue, data, cache_root)


def test_input_folder_changed_while_hashed(
    tools: Tools,
    catalogue: Path,
    data: Path,
    monkeypatch: pytest.MonkeyPatch,
    cache_root: Path,
) -> None:
    """Promise 3: a file added to a folder input while imcache walks it stops the run."""
    original = hashing.digest_file
    added: list[str] = []

    def digest_then_add(path: str, size: int | None = None) -> str:
        digest: str = original(path, size)
        if not added:
            (data / "late.txt").write_text("late\n")
            added.append(path)
        return digest

    monkeypatch.setattr(hashing, "digest_file", digest_then_add)
    result = imcache("--interfaces", str(catalogue), "run", "test.ListFolder", "--folder", "data")
    assert added, "the wrapper must have run"
    assert result.exit_code == 1, result.stderr
    assert f"input '{data}' changed while imcache was reading it" in result.stderr
    assert tools.calls(LISTER) == 0
    assert not cache_root.exists() or list(cache_root.glob("*/*")) == []
