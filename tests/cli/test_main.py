"""The group loads each command's module only when that command runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.test_fast import COPY


def test_a_run_does_not_import_the_other_commands() -> None:
    probe = (
        "import sys\n"
        "from imcache.cli.main import cli\n"
        "cli.get_command(None, 'run')\n"
        "heavy = [m for m in ('imcache.core.scan', 'imcache.core.clear', 'imcache.core.sessions',"
        " 'imcache.core.stats', 'imcache.cli.options', 'imcache.cli.params',"
        " 'imcache.cli.clear_cmd', 'imcache.cli.session_cmd', 'imcache.cli.stats_cmd',"
        " 'imcache.cli.interfaces_cmd', 'concurrent.futures', 'imcache.core.process',"
        " 'subprocess', 'traceback', 'shutil', 'difflib', 'dataclasses')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "", f"imported on the run path: {found.stdout.strip()}"


# What a hit served by cli/fast.py never needs (issue 17): each is imported where it is used.
OFF_THE_HIT = (
    "typing",
    "contextlib",
    "threading",
    "mmap",
    "struct",
    "math",
    "importlib",
    "warnings",
    "re",
    "json",
    "enum",
    "functools",
    "collections",
)
DEFINITION = COPY  # the cp definition of the fast path's own tests
HIT_PROBE = (
    "import sys\n"
    "from imcache.cli.fast import serve_hit\n"
    "code = serve_hit(sys.argv[1:])\n"
    f"print(code, ','.join(m for m in {OFF_THE_HIT!r} if m in sys.modules))\n"
)


def test_a_hit_imports_none_of_what_only_misses_and_errors_need(tmp_path: Path) -> None:
    (tmp_path / "cat" / "t").mkdir(parents=True)
    (tmp_path / "cat" / "t" / "Copy.json").write_text(json.dumps(DEFINITION))
    (tmp_path / "in.bin").write_bytes(b"input")
    time.sleep(2.2)  # older than the memo's racy window (ctime too): its digest is kept
    words = ["--base-dir", "base", "--interfaces", "cat", "run", "t.Copy", "--in-file", "in.bin"]
    words += ["--out", "copy.bin"]
    for _ in range(2):  # a miss, then a hit by the full command, which fills the memo
        done = subprocess.run(
            [sys.executable, "-m", "imcache", *words], cwd=tmp_path, capture_output=True
        )
        assert done.returncode == 0, done.stderr
    hit = subprocess.run(
        [sys.executable, "-c", HIT_PROBE, *words],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    code, imported = hit.stdout.splitlines()[-1].split(" ")
    assert code == "0", hit.stderr  # served here: a hit
    assert imported.strip() == "", f"imported on a hit: {imported.strip()}"


def test_results_that_standard_output_cannot_take_are_no_internal_error(tmp_path: Path) -> None:
    """`imcache run ... > /dev/full` was exit 3, "internal error", on both paths, and a fast hit
    with stdout closed (`>&-`) too, where the click path writes nothing and exits 0: now a full
    stdout is one line naming it, exit 1, and a closed one is the click path's. Real cp."""
    (tmp_path / "cat" / "t").mkdir(parents=True)
    (tmp_path / "cat" / "t" / "Copy.json").write_text(json.dumps(DEFINITION))
    (tmp_path / "in.bin").write_bytes(b"input")
    time.sleep(2.2)  # older than the memo's racy window: the fast path serves the hits
    words = "--base-dir base --interfaces cat run t.Copy --in-file in.bin --out copy.bin"
    imcache = f"{sys.executable} -m imcache {words}"
    for _ in range(2):  # the miss, then a hit by the full command, which fills the memo
        done = _shell(imcache, tmp_path)
        assert done.returncode == 0, done.stderr
    for extra in ("", " --json", " --force"):  # a fast hit, a click hit, a run
        full = _shell(f"{imcache}{extra} > /dev/full", tmp_path)
        assert full.returncode == 1, (extra, full.stderr)
        assert "error: cannot write the results: standard output is full" in full.stderr
        closed = _shell(f"{imcache}{extra} >&-", tmp_path)
        assert closed.returncode == 0, (extra, closed.stderr)
        assert "internal error" not in full.stderr + closed.stderr


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True)
