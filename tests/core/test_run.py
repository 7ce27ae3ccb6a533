"""Real runs of mrcat through `imcache run` (core/run.py): misses, hits, failures, --force, a
damaged entry and the streams. What decides the key is in test_plan.py, what a miss leaves in
its entry in test_outputs.py; both use the helpers here.

Every test puts a counting wrapper around the real mrcat first on PATH (`counting_mrcat`), so
"the tool ran" and "the tool did not run" are facts read from a counter, not from imcache's word.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import imcache, require_tool, run_json, run_ok

MRCAT = "mrtrix3.MRCat"
MakeNifti = Callable[..., Path]
Calls = Callable[[], int]


def concat_args(*files: str | Path, out: str = "merged.nii") -> list[str]:
    return ["run", MRCAT, "--in-files", *(str(f) for f in files), "--axis", "3", "--out-file", out]


def entry_folders(cache_root: Path) -> list[Path]:
    """Every folder one level below an interface folder: complete, incomplete or failed entries."""
    if not cache_root.is_dir():
        return []
    return sorted(p for p in cache_root.glob("*/*") if p.is_dir())


@pytest.fixture
def pair(make_nifti: MakeNifti) -> tuple[Path, Path]:
    """Two different (4, 4, 3) volumes, a.nii and b.nii, in the working folder."""
    return make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)


def test_miss_then_hit(counting_mrcat: Calls, pair: tuple[Path, Path], cache_root: Path) -> None:
    import nibabel as nib

    first = run_json(*concat_args("a.nii", "b.nii"))
    assert counting_mrcat() == 1
    assert first["cached"] is False

    second = run_json(*concat_args("a.nii", "b.nii"))
    assert counting_mrcat() == 1, "an identical second run must not call mrcat"
    assert second["cached"] is True
    assert second["key"] == first["key"]
    assert second["outputs"] == first["outputs"]

    plain_first = run_ok(*concat_args("a.nii", "b.nii")).stdout
    plain_second = run_ok(*concat_args("a.nii", "b.nii")).stdout
    assert counting_mrcat() == 1
    assert plain_first == plain_second
    assert plain_first.strip() == f"out_file: {first['outputs']['out_file']}"

    image = nib.load(first["outputs"]["out_file"])
    assert image.shape == (4, 4, 3, 2)
    assert Path(first["outputs"]["out_file"]).resolve().is_relative_to(cache_root.resolve())


def test_get_prints_one_existing_path(
    counting_mrcat: Calls, pair: tuple[Path, Path], cache_root: Path
) -> None:
    for _ in range(2):  # once on a miss, once on a hit
        result = run_ok(*concat_args("a.nii", "b.nii"), "--get", "out_file")
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        path = Path(lines[0])
        assert path.is_absolute()
        assert path.is_file()
        assert path.resolve().is_relative_to(cache_root.resolve())
        assert path.name == "merged.nii"
    assert counting_mrcat() == 1


def test_failed_run_is_not_cached(
    counting_mrcat: Calls, make_nifti: MakeNifti, cache_root: Path
) -> None:
    make_nifti("small.nii", seed=1, shape=(4, 4, 3))
    make_nifti("big.nii", seed=2, shape=(5, 5, 5))
    args = concat_args("small.nii", "big.nii")

    first = imcache(*args)
    assert counting_mrcat() == 1
    assert first.exit_code == 1, first.stderr  # mrcat's own exit code
    assert "failed with exit code 1" in first.stderr
    assert first.stdout == "", "a failed run prints no result"
    assert not list(cache_root.rglob("imcache.json"))
    failed = [p for p in entry_folders(cache_root) if ".failed-" in p.name]
    assert len(failed) == 1
    assert (failed[0] / "stderr.txt").read_text().strip(), "the tool's log is kept"

    second = imcache(*args)
    assert counting_mrcat() == 2, "a failed run is never a hit"
    assert second.exit_code == 1
    assert not list(cache_root.rglob("imcache.json"))


def test_force_reruns_then_hits(counting_mrcat: Calls, pair: tuple[Path, Path]) -> None:
    first = run_json(*concat_args("a.nii", "b.nii"))
    forced = run_json(*concat_args("a.nii", "b.nii"), "--force")
    assert counting_mrcat() == 2
    assert forced["cached"] is False
    assert forced["key"] == first["key"]
    assert Path(forced["outputs"]["out_file"]).is_file()

    after = run_json(*concat_args("a.nii", "b.nii"))
    assert counting_mrcat() == 2
    assert after["cached"] is True
    assert after["key"] == first["key"]


def test_streams_of_a_real_subprocess(
    counting_mrcat: Calls,
    pair: tuple[Path, Path],
    imcache_proc: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    args = concat_args("a.nii", "b.nii")
    miss = imcache_proc(*args)
    assert miss.returncode == 0, miss.stderr
    assert counting_mrcat() == 1
    lines = miss.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("out_file: /"), miss.stdout
    assert "mrcat" in miss.stderr, "the tool's own messages go to stderr"

    hit = imcache_proc(*args)
    assert hit.returncode == 0, hit.stderr
    assert counting_mrcat() == 1
    assert hit.stdout == miss.stdout
    assert "collecting precomputed outputs" in hit.stderr
    assert "collecting" not in hit.stdout

    got = imcache_proc(*args, "--get", "out_file")
    assert got.returncode == 0, got.stderr
    assert got.stdout == lines[0].removeprefix("out_file: ") + "\n"


def test_deleted_output_reruns(counting_mrcat: Calls, pair: tuple[Path, Path]) -> None:
    first = run_json(*concat_args("a.nii", "b.nii"))
    out_file = Path(first["outputs"]["out_file"])
    out_file.unlink()

    again = imcache(*concat_args("a.nii", "b.nii"), "--json")
    assert again.exit_code == 0, again.stderr
    assert counting_mrcat() == 2, "a damaged entry is not a hit"
    assert again.stderr.count("damaged") == 1, again.stderr
    assert "warning" in again.stderr
    data = json.loads(again.stdout)
    assert data["cached"] is False
    assert data["key"] == first["key"]
    assert out_file.is_file()

    assert run_json(*concat_args("a.nii", "b.nii"))["cached"] is True
    assert counting_mrcat() == 2


def test_an_exported_output_edited_in_place_is_damage_not_a_hit(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    """Issue 13 item 2: an export is a hard link, so an edit of it (as root, or by anyone who may
    write it) keeps the size and edits the cache's bytes: the next run must redo, never hand
    them back."""
    first = run_json(*concat_args("a.nii", "b.nii"), "--export", "out_file=x.nii")
    cached = Path(first["outputs"]["out_file"])
    fresh = cached.read_bytes()
    exported = isolated / "x.nii"
    assert exported.stat().st_ino == cached.stat().st_ino
    with open(exported, "r+b") as handle:  # one byte flipped in place: same size, same inode
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 0xFF]))
    assert cached.read_bytes() != fresh and cached.stat().st_size == len(fresh)

    again = imcache(*concat_args("a.nii", "b.nii"), "--json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["cached"] is False, "edited bytes must never be a hit"
    assert counting_mrcat() == 2
    assert "merged.nii was changed after it was cached (digest mismatch)" in again.stderr
    assert cached.read_bytes() == fresh, "the redone entry holds mrcat's own bytes again"


def test_an_export_moves_a_signature_and_the_memo_vouches_once_rehashed(
    counting_mrcat: Calls,
    pair: tuple[Path, Path],
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 13 item 2: a hit is one stat per output; an export's new link moves the ctime, so
    the next hit reads the file once, and from then on it is stat-only again."""
    from imcache.core import entry as entry_module
    from imcache.core import hashing

    monkeypatch.setattr(hashing, "RACY_NS", 0)  # the memo takes a file changed just now
    reads: list[str] = []
    real_digest = entry_module.digest_file

    def counted(path: str, size: int | None = None) -> str:
        reads.append(path)
        return real_digest(path, size)

    monkeypatch.setattr(entry_module, "digest_file", counted)
    run_json(*concat_args("a.nii", "b.nii"))
    assert run_json(*concat_args("a.nii", "b.nii"))["cached"] is True
    assert reads == [], "an untouched entry is a stat per output, no read"

    run_json(*concat_args("a.nii", "b.nii"), "--export", "out_file=x.nii")
    assert reads == [], "the export's hit checked the entry before linking"
    assert run_json(*concat_args("a.nii", "b.nii"))["cached"] is True
    assert len(reads) == 1 and reads[0].endswith("merged.nii"), "rehashed once: moved ctime"
    assert run_json(*concat_args("a.nii", "b.nii"))["cached"] is True
    assert len(reads) == 1, "the memo vouches for the new signature: stat-only again"
    assert counting_mrcat() == 1


def test_a_writer_that_outlives_the_tool_is_an_error_and_nothing_is_cached(
    pair: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cache_root: Path,
) -> None:
    """Issue 13 item 3: a tool that leaves a process appending to its output (no real program
    does that on demand: a fake mrcat plays it) must not get a still-growing file cached."""
    import signal
    import time

    from imcache.core import run as run_module
    from tests.conftest import first_on_path

    pid_file = tmp_path / "writer.pid"
    script = f"""#!/bin/sh
for out; do :; done
echo first > "$out"
( i=0; while [ $i -lt 1000 ]; do echo more >> "$out"; sleep 0.01; i=$((i+1)); done ) \\
    </dev/null >/dev/null 2>&1 &
echo $! > "{pid_file}"
"""
    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": script})
    real_digests = run_module.file_digests

    def slow_digests(*args: object, **kwargs: object) -> object:
        time.sleep(0.3)  # a large output takes this long to read: the writer goes on meanwhile
        return real_digests(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "file_digests", slow_digests)
    try:
        result = imcache(*concat_args("a.nii", "b.nii"))
    finally:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert result.exit_code == 1, result.stderr
    assert "a process is still writing out_file (merged.nii)" in result.stderr
    assert not list(cache_root.rglob("imcache.json")), "nothing cached"
    kept = [p for p in entry_folders(cache_root) if ".failed-" in p.name]
    assert len(kept) == 1 and (kept[0] / "merged.nii").exists(), "the attempt is kept aside"


def test_a_tool_killed_by_a_signal_is_named_by_it(
    pair: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 item 10: a returncode of -15 is a signal, not an exit code."""
    from tests.conftest import first_on_path

    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": "#!/bin/sh\nkill -TERM $$\n"})
    result = imcache(*concat_args("a.nii", "b.nii"))
    assert result.exit_code == 143, result.stderr
    assert "mrcat (mrtrix3.MRCat) was killed by signal 15 (SIGTERM)" in result.stderr
    assert "exit code -15" not in result.stderr


def test_a_full_disk_says_what_failed_attempts_take(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_nifti: Callable[..., Path]
) -> None:
    """Issue 13 item 8: on ENOSPC the error says what failed attempts hold, and how to free it."""
    import errno

    from imcache.core import process
    from imcache.core.layout import cache_root as root_of
    from imcache.core.store import Store, cache_errors

    require_tool("mrcat")
    store = Store(root_of(str(tmp_path / "base")))
    store.ensure("mrtrix3.MRCat")
    attempt = Path(store.keep_failed(store.prepare_entry("mrtrix3.MRCat", "e" * 32)))
    (attempt / "stderr.txt").write_bytes(b"x" * 5000)

    def full(*args: object, **kwargs: object) -> object:
        with cache_errors(str(attempt)):  # the pumps' log on a full disk
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(process, "run_tool", full)
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    result = imcache(
        "run", "mrtrix3.MRCat", "--in-files", "a.nii", "b.nii", "--axis", "3", "--out-file", "m.nii"
    )
    assert result.exit_code == 1, result.stderr
    assert "failed attempts take 5000 bytes of the cache" in result.stderr
    assert "'imcache clear --failed' removes them" in result.stderr


def test_a_request_that_does_not_hold_leaves_no_lock_behind(
    counting_mrcat: Calls, pair: tuple[Path, Path], drop_own_holds: None
) -> None:
    import os

    from imcache.core import lock
    from imcache.core.plan import RunRequest
    from imcache.core.run import run

    class Quiet:
        echo = None

        def waiting(self, plan: object) -> None: ...
        def running(self, plan: object) -> None: ...
        def warning(self, message: str) -> None: ...

    def request(hold: bool) -> RunRequest:
        return RunRequest(
            interface="mrtrix3.MRCat",
            words=[],
            values={"in_files": [str(p) for p in pair]},
            base_dir=os.environ["IMCACHE_BASE_DIR"],
            cwd=os.getcwd(),
            env=dict(os.environ),
            hold=hold,
        )

    ran = run(request(hold=False), Quiet())  # a miss
    lock_path = ran.plan.store.lock_path(ran.plan.interface.name, ran.plan.key)
    assert lock_path not in lock._HELD
    hit = run(request(hold=False), Quiet())  # a hit
    assert hit.cached and lock_path not in lock._HELD
    run(request(hold=True), Quiet())  # the CLI's way: held until the process exits
    assert lock_path in lock._HELD
    assert counting_mrcat() == 1
