"""Promise 5: with a tool whose outputs differ from run to run, the first complete result stands.

Connectome Workbench's `wb_command -volume-reduce` writes the time (to the second) into every
output, so two runs never give the same bytes. imcache must still hand every caller of one key
the same bytes: concurrent callers wait for the one run and all get its result, and later calls
hit it, instead of each caller getting (or replacing it with) a result of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import first_on_path, imcache, require_tool, run_json

REDUCE = "workbench.VolumeReduce"
ARGS = ["run", REDUCE, "--volume-in", "v.nii", "--operation", "MEAN"]
CALLERS = 8
TOOL_DELAY_S = 1.0  # the wrapper's pause before the real wb_command: the callers overlap it
WAIT_S = 60.0  # the longest the concurrent callers may take in all
MakeNifti = Callable[..., Path]


def next_second() -> None:
    """Sleep into the next wall-clock second: wb_command's timestamp must then differ."""
    time.sleep(1.0 - time.time() % 1.0 + 0.05)


@pytest.fixture
def volume(make_nifti: MakeNifti) -> Path:
    """A 4D volume of five (4, 4, 3) subvolumes."""
    require_tool("wb_command")
    return make_nifti("v.nii", seed=0, shape=(4, 4, 3, 5))


@dataclass(frozen=True)
class SlowWorkbench:
    counter: Path

    def calls(self) -> int:
        return len(self.counter.read_text().splitlines()) if self.counter.exists() else 0


@pytest.fixture
def slow_wb_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SlowWorkbench:
    """A wrapper first on PATH that counts its calls, pauses, then runs the real wb_command."""
    real = require_tool("wb_command")
    counter = tmp_path / "wb_command-calls"
    script = f'#!/bin/sh\necho x >> "{counter}"\nsleep {TOOL_DELAY_S}\nexec "{real}" "$@"\n'
    first_on_path(tmp_path / "bin", monkeypatch, {"wb_command": script})
    return SlowWorkbench(counter)


def test_the_tool_is_not_deterministic(volume: Path) -> None:
    """Promise 5's premise: two forced runs a second apart give different bytes."""
    first = run_json(*ARGS, "--force")
    out = Path(first["outputs"]["volume_out"])
    first_bytes = out.read_bytes()
    next_second()
    second = run_json(*ARGS, "--force")
    assert second["cached"] is False and second["key"] == first["key"]
    assert second["outputs"] == first["outputs"]
    second_bytes = out.read_bytes()
    assert second_bytes != first_bytes, "wb_command must stamp its outputs with the time"
    assert len(second_bytes) == len(first_bytes), "the same volume, another timestamp"


@dataclass
class Caller:
    process: subprocess.Popen[str]
    read_at_exit: bytes | None = None
    stdout: str = ""
    stderr: str = ""


def test_concurrent_callers_share_the_first_result(
    volume: Path, slow_wb_command: SlowWorkbench, cache_root: Path
) -> None:
    """Promise 5: of 8 concurrent callers of a fresh key one runs, all get its exact bytes,
    and later calls hit that first complete result."""
    planned = run_json(*ARGS, "--dry-run")
    assert planned["cached"] is False, "a fresh key"
    out = Path(planned["outputs"]["volume_out"])

    callers = [
        Caller(
            subprocess.Popen(
                [sys.executable, "-m", "imcache", *ARGS, "--get", "volume_out"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        for _ in range(CALLERS)
    ]
    deadline = time.monotonic() + WAIT_S
    try:
        while any(c.read_at_exit is None for c in callers):
            assert time.monotonic() < deadline, f"the callers took more than {WAIT_S} s"
            for caller in callers:
                if caller.read_at_exit is None and caller.process.poll() is not None:
                    # right after it exits: what this caller was handed, not a later state
                    caller.read_at_exit = out.read_bytes() if out.exists() else b""
                    caller.stdout, caller.stderr = caller.process.communicate(timeout=WAIT_S)
            time.sleep(0.005)
    finally:
        for caller in callers:  # only our own processes, each by its own handle
            if caller.process.poll() is None:
                caller.process.kill()
                caller.process.communicate(timeout=WAIT_S)

    for caller in callers:
        assert caller.process.returncode == 0, caller.stderr
        assert caller.stdout == f"{out}\n", "every caller prints the same output path"
    assert slow_wb_command.calls() == 1, "exactly one caller runs the tool"
    waited = sum("another process is running this key" in c.stderr for c in callers)
    assert waited >= 1, "the callers must have overlapped the run"
    first_bytes = callers[0].read_at_exit
    assert first_bytes, "the output exists when a caller exits"
    assert all(c.read_at_exit == first_bytes for c in callers), "one result for every caller"

    next_second()  # a rerun now would stamp other bytes
    hit = run_json(*ARGS)
    assert hit["cached"] is True
    assert slow_wb_command.calls() == 1
    assert Path(hit["outputs"]["volume_out"]).read_bytes() == first_bytes, "the first result stands"

    verified = imcache("verify", "--json")
    assert verified.exit_code == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert report["checked"] == 1 and report["damaged"] == []
    assert [p.name for p in cache_root.glob(f"{REDUCE}/*") if p.is_dir()] == [planned["key"]]
