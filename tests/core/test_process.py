"""The runner passes a stop request on to the tool: SIGTERM (a cancelled CI job, `timeout`) sent to
imcache alone stops the tool too, exit 143, nothing cached, and the next run recovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import first_on_path, require_tool


@pytest.fixture(params=["alone", "with a child holding its output"])
def slow_mrcat(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A wrapper that notes its pid, waits, then runs the real mrcat (a slow tool on demand).

    In the second form it leaves a child behind that keeps the tool's stdout and stderr open
    after the tool is stopped: imcache must not wait for that child."""
    orphan = "sleep 30 &\n" if request.param != "alone" else ""
    real = require_tool("mrcat")
    pid_file = tmp_path / "tool.pid"
    script = (
        f'#!/bin/sh\necho $$ > "{pid_file}"\n'
        f'[ -e "{tmp_path / "fast"}" ] && exec "{real}" "$@"\n{orphan}exec sleep 30\n'
    )
    first_on_path(tmp_path / "slow-bin", monkeypatch, {"mrcat": script})
    return pid_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_sigterm_stops_the_tool_and_exits_143(
    slow_mrcat: Path, make_nifti: Callable[..., Path], cache_root: Path, tmp_path: Path
) -> None:
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    argv = [sys.executable, "-m", "imcache", "run", "mrtrix3.MRCat", "--in-files", "a.nii"]
    argv += ["b.nii", "--json"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: slow_mrcat.exists() and slow_mrcat.read_text().strip() != "")
    tool_pid = int(slow_mrcat.read_text())
    process.send_signal(signal.SIGTERM)  # to imcache only, not to its process group
    stopped_at = time.monotonic()
    _out, err = process.communicate(timeout=20)
    assert time.monotonic() - stopped_at < 10, "imcache waited on the stopped tool's child"

    assert process.returncode == 143, err
    assert "SIGTERM" in err and "Traceback" not in err
    _wait_for(lambda: not _alive(tool_pid), timeout=10)
    assert not list(cache_root.glob("*/*/imcache.json")), "a stopped run must not be cached"

    (tmp_path / "fast").touch()
    again = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cached"] is False


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_hang_up_stops_the_tool_as_sigterm_does_and_the_attempt_is_kept_as_failed(
    signum: int, make_nifti: Callable[..., Path], cache_root: Path, tmp_path: Path
) -> None:
    """Issue 13 item 10: a closed terminal or ssh session (SIGHUP to imcache alone) must not
    leave the tool running without us; the interrupted attempt is renamed as failed, as
    docs/reliability.md says, not left as an incomplete entry."""
    pid_file = tmp_path / "tool.pid"
    script = f'#!/bin/sh\necho $$ > "{pid_file}"\nexec sleep 30\n'
    env = {**os.environ, "PATH": f"{tmp_path / 'hup-bin'}{os.pathsep}{os.environ['PATH']}"}
    (tmp_path / "hup-bin").mkdir()
    (tmp_path / "hup-bin" / "mrcat").write_text(script)
    (tmp_path / "hup-bin" / "mrcat").chmod(0o755)
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    argv = [sys.executable, "-m", "imcache", "run", "mrtrix3.MRCat", "--in-files", "a.nii"]
    argv += ["b.nii", "--axis", "3", "--out-file", "m.nii"]
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    _wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "")
    tool_pid = int(pid_file.read_text())
    process.send_signal(signum)  # to imcache only
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 128 + signum, err
    assert f"({signal.Signals(signum).name})" in err and "Traceback" not in err
    _wait_for(lambda: not _alive(tool_pid), timeout=10)
    folders = [p.name for p in cache_root.glob("mrtrix3.MRCat/*") if p.is_dir()]
    assert len(folders) == 1 and ".failed-" in folders[0], folders
