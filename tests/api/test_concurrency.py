"""Threads and processes calling one key at once keep the CLI's guarantee: the tool runs once,
and every caller gets that run's outputs (real flock locks, the real mrcat behind a counter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from imcache.api import Memory, Result
from tests.api.conftest import MRCAT
from tests.conftest import REPO, first_on_path, require_tool

CALLER = """
import json, os, sys, time
from imcache import Memory
concat = Memory().cache("mrtrix3.MRCat")
start = sys.argv[1]
print("ready", flush=True)
while not os.path.exists(start):
    time.sleep(0.005)
res = concat(in_files=sys.argv[2:])
print(json.dumps({"key": res.key, "cached": res.cached, "out": res.outputs.out_file}))
"""


def test_threads_and_processes_at_once_run_a_key_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pair: list[str]
) -> None:
    real = require_tool("mrcat")
    counter = tmp_path / "calls"
    # Slow enough that every caller arrives while the one run is still going.
    slow = f'#!/bin/sh\necho x >> "{counter}"\nsleep 1\nexec "{real}" "$@"\n'
    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": slow})
    start = tmp_path / "start"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CALLER, str(start), *pair],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    concat = Memory().cache(MRCAT)
    results: list[Result] = []
    errors: list[BaseException] = []

    def call() -> None:
        while not start.exists():
            time.sleep(0.005)
        try:
            results.append(concat(in_files=pair))
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    start.touch()
    for thread in threads:
        thread.join(60)
    outputs = [process.communicate(timeout=60)[0] for process in processes]
    assert errors == []
    seen = [json.loads(out) for out in outputs]
    assert len(counter.read_text().splitlines()) == 1  # one run for six callers
    assert len(results) == 4
    keys = {res.key for res in results} | {item["key"] for item in seen}
    assert len(keys) == 1
    assert {res.outputs.out_file for res in results} | {item["out"] for item in seen} == {
        results[0].outputs.out_file
    }
    ran = [res for res in results if not res.cached] + [i for i in seen if not i["cached"]]
    assert len(ran) == 1
