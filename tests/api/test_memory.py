"""Memory (api/memory.py): the CLI's cache, a session per Memory, and nipype's clear methods,
working; no lock of a call outlives it, so another process's `clear` is never held back."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import imcache
from imcache.api import Memory
from imcache.core.layout import ROOT_NAME
from tests.api.conftest import MRCAT
from tests.cache_entries import EntryMaker
from tests.conftest import REPO, run_imcache

Calls = Callable[[], int]


def test_base_dir_follows_the_clis_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Memory().base_dir == os.environ["IMCACHE_BASE_DIR"]
    assert Memory(tmp_path / "here").root == str(tmp_path / "here" / ROOT_NAME)
    monkeypatch.delenv("IMCACHE_BASE_DIR")
    assert Memory().base_dir == os.getcwd()


def test_each_memory_starts_a_session(pair: list[str]) -> None:
    first = Memory()
    second = Memory()
    assert first.session.id != second.session.id
    assert second.session.started_ns >= first.session.started_ns
    status = json.loads(run_imcache("session", "status", "--json", check=True).stdout)
    assert status["session"] == second.session.id  # the CLI sees the latest


def test_clear_previous_runs_removes_what_this_memory_did_not_use(
    counting_mrcat: Calls, pair: list[str]
) -> None:
    old = Memory()
    concat = old.cache(MRCAT)
    kept_early, dropped = concat(in_files=pair), concat(in_files=pair, axis=3)
    time.sleep(0.01)
    new = Memory()  # the next run of the pipeline: uses one of the two
    used = new.cache(MRCAT)(in_files=pair)
    assert used.cached and used.key == kept_early.key
    removed = new.clear_previous_runs(warn=False)
    assert [entry.key for entry in removed] == [dropped.key]
    assert not Path(dropped.work_dir).exists() and Path(used.work_dir).is_dir()
    # The first Memory's own session began before both entries were used: nothing to remove.
    assert old.clear_previous_runs(warn=False) == []


def test_clear_runs_since_takes_a_local_date(counting_mrcat: Calls, pair: list[str]) -> None:
    mem = Memory()
    res = mem.cache(MRCAT)(in_files=pair)
    assert mem.clear_runs_since(warn=False) == []  # used today: kept (missing parts = today)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    removed = mem.clear_runs_since(tomorrow.day, tomorrow.month, tomorrow.year, warn=False)
    assert [entry.key for entry in removed] == [res.key]
    assert not Path(res.work_dir).exists()


def test_clear_applies_the_clis_other_policies(
    counting_mrcat: Calls, pair: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    mem = Memory()
    res = mem.cache(MRCAT)(in_files=pair)
    assert mem.clear(older_than=dt.timedelta(days=1)) == []
    would = mem.clear(max_size=0, dry_run=True)
    assert [e.key for e in would] == [res.key] and Path(res.work_dir).is_dir()
    assert "would remove" in caplog.text  # warn=True echoes, through the `imcache` logger
    with pytest.raises(imcache.UsageError, match="needs a policy"):
        mem.clear()
    assert [e.key for e in mem.clear(everything=True, warn=False)] == [res.key]
    assert not Path(res.work_dir).exists()


USER = """
import sys
from imcache import Memory
res = Memory().cache("mrtrix3.MRCat")(in_files=sys.argv[1:])
print(res.work_dir, flush=True)
sys.stdin.readline()  # alive, holding the paths, until the test lets go
print("alive", flush=True)
"""


def test_a_live_python_process_never_stops_another_processes_clear(
    counting_mrcat: Calls, pair: list[str]
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    user = subprocess.Popen(
        [sys.executable, "-c", USER, *pair],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert user.stdout is not None and user.stdin is not None
        work_dir = user.stdout.readline().strip()
        assert Path(work_dir).is_dir()
        cleared = run_imcache("clear", "--all", "--json", env=env)
        assert cleared.returncode == 0, cleared.stderr
        report = json.loads(cleared.stdout)
        assert [e["key"] for e in report["removed"]] == [Path(work_dir).name]
        assert report["in_use"] == []
        assert not Path(work_dir).exists()
        assert user.poll() is None  # still alive while its entry went
        user.stdin.write("\n")
        user.stdin.flush()
        assert user.stdout.readline() == "alive\n"
    finally:
        user.kill()
        user.wait()


def test_a_large_clear_deletes_before_it_returns(make_entry: EntryMaker) -> None:
    """A Python caller looks at the disk after `clear()`: the files of a clear of more than
    BACKGROUND_OVER entries are gone by then too (no background deletion from the API)."""
    from imcache.core.files import BACKGROUND_OVER
    from tests.cache_entries import clone_entries, deleters, release_own_holds, set_aside

    made = make_entry("merged.nii")
    release_own_holds()
    clone_entries(made, BACKGROUND_OVER + 50)
    assert len(Memory().clear(everything=True, warn=False)) == BACKGROUND_OVER + 51
    root = made.path.parent.parent
    assert (set_aside(root), deleters(root)) == ([], [])
    assert [p for p in root.glob("*/*") if p.is_dir()] == []
