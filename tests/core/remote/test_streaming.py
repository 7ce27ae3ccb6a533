"""Large files stream: pushing and fetching a 1 GiB output stays under 300 MiB of peak memory.

Each side runs in a fresh process that reports its own peak resident size at its end. Not
getrusage's ru_maxrss: Linux carries that over exec from the process that forked it, and this
test's own process holds the first entry's 1 GiB (mapped while it was hashed); /proc's VmHWM is
the peak of the new program alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_ok
from tests.remote_fixtures import MakeTool

GIB = 1024**3
LIMIT_MIB = 300
MEASURED = """
import sys
from imcache.cli.main import cli
try:
    cli.main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(peak // 1024, code, file=sys.stderr)
"""


def measured(*args: str, base: Path) -> tuple[int, str]:
    """Peak MiB of `imcache ARGS` in a fresh process, and its stdout; it must succeed."""
    env = {**os.environ, "IMCACHE_BASE_DIR": str(base)}
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *args], env=env, capture_output=True, text=True
    )
    peak, code = done.stderr.strip().splitlines()[-1].split()
    assert code in ("0", "None"), done.stderr
    return int(peak), done.stdout


def test_one_gib_push_and_fetch_stay_under_300_mib(
    tmp_path: Path, remote_env: dict[str, str], maketool: MakeTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMCACHE_REMOTE_MODE", "read-only")
    made = json.loads(run_ok(*maketool.args(GIB), "--json").stdout)
    monkeypatch.delenv("IMCACHE_REMOTE_MODE")

    peak, _ = measured("push", base=tmp_path / "base")
    assert peak < LIMIT_MIB, f"push of 1 GiB peaked at {peak} MiB"

    peak, stdout = measured(*maketool.args(GIB), "--json", base=tmp_path / "two")
    assert peak < LIMIT_MIB, f"fetch of 1 GiB peaked at {peak} MiB"
    fetched = json.loads(stdout)
    assert fetched["cached"] is True and maketool.calls() == 1
    assert os.path.getsize(fetched["outputs"]["made"]) == GIB
    # the fetch checked every byte against the sha256 and the xxh3 the first entry recorded
    records = [
        json.loads((Path(r["work_dir"]) / "imcache.json").read_text()) for r in (made, fetched)
    ]
    assert records[0]["files"] == records[1]["files"]
