"""8 processes on 8 base folders race one key through one remote: one record stands, and every
process hands back its bytes (the tool writes random bytes: each run's own would differ)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import obstore
import pytest

from tests.core.remote.test_flow import prefix_of
from tests.remote_fixtures import make_tool
from tests.remote_server import S3Server

RACERS = 8


def test_eight_base_folders_race_one_key(
    tmp_path: Path,
    s3_server: S3Server,
    remote_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A barrier: every tool waits until all 8 have started, so that no racer can find the
    # remote record before it runs, and all 8 pushes meet at the create-only write.
    counter = tmp_path / "maketool" / "maketool-calls"
    barrier = (
        f'i=0; while [ "$(wc -l < "{counter}")" -lt {RACERS} ] && [ $i -lt 600 ]; '
        "do sleep 0.05; i=$((i+1)); done"
    )
    tool = make_tool(tmp_path / "maketool", monkeypatch, before=barrier)
    racers = []
    for number in range(RACERS):
        env = {**os.environ, "IMCACHE_BASE_DIR": str(tmp_path / f"base{number}")}
        racers.append(
            subprocess.Popen(
                [sys.executable, "-m", "imcache", *tool.args(20000), "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    reports = []
    for racer in racers:
        stdout, stderr = racer.communicate(timeout=120)
        assert racer.returncode == 0, stderr
        assert "warning" not in stderr, stderr
        reports.append(json.loads(stdout))
    handed = {Path(report["outputs"]["made"]).read_bytes() for report in reports}
    assert len({report["key"] for report in reports}) == 1
    assert tool.calls() == RACERS, "every racer must run the tool, or this tests nothing"
    assert len(handed) == 1, f"{len(handed)} different results handed out for one key"

    store = s3_server.bucket_store(prefix=prefix_of(remote_env))
    records = [meta["path"] for page in obstore.list(store, "ac/") for meta in page]
    assert records == [f"ac/test.Make/{reports[0]['key']}.json"]
    action = json.loads(bytes(obstore.get(store, records[0]).bytes()))
    made = handed.pop()
    assert action["files"]["made.bin"]["sha256"] == hashlib.sha256(made).hexdigest()
