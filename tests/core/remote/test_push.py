"""`imcache push`: blobs first, the record last, so a push killed half-way leaves no record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import obstore
import pytest

from tests.conftest import run_ok
from tests.core.remote.test_flow import prefix_of
from tests.remote_fixtures import MakeTool
from tests.remote_server import S3Server

BIG = 192 * 1024 * 1024  # long enough an upload to be killed in the middle of


def objects(store: object, prefix: str) -> list[str]:
    return sorted(meta["path"] for page in obstore.list(store, prefix) for meta in page)  # type: ignore[arg-type]


def test_kill_during_push_leaves_no_record(
    tmp_path: Path,
    s3_server: S3Server,
    remote_env: dict[str, str],
    maketool: MakeTool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IMCACHE_REMOTE_MODE", "read-only")  # make the entry, push nothing
    report = json.loads(run_ok(*maketool.args(BIG), "--json").stdout)
    store = s3_server.bucket_store(prefix=prefix_of(remote_env))
    assert objects(store, "") == []
    monkeypatch.delenv("IMCACHE_REMOTE_MODE")

    # The push sends the smallest files first (the logs): kill it as soon as one blob is
    # there, while made.bin's upload is under way; the record would come after it.
    pusher = subprocess.Popen(
        [sys.executable, "-m", "imcache", "push"],
        env=dict(os.environ),
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not objects(store, "cas/") and time.monotonic() < deadline:
        assert pusher.poll() is None, "the push ended before a blob was seen"
        time.sleep(0.02)
    alive = pusher.poll() is None
    os.kill(pusher.pid, signal.SIGKILL)
    pusher.wait()
    assert alive, "the push had finished: nothing was killed in the middle"
    assert len(objects(store, "cas/")) < 3, "made.bin's blob must not be up yet"
    assert objects(store, "ac/") == [], "a killed push must leave no record"

    # the next push completes it, and a fetch elsewhere gets every byte
    run_ok("push")
    assert objects(store, "ac/") == [f"ac/test.Make/{report['key']}.json"]
    second = json.loads(
        run_ok("--base-dir", str(tmp_path / "two"), *maketool.args(BIG), "--json").stdout
    )
    assert second["cached"] is True and maketool.calls() == 1
    assert os.path.getsize(second["outputs"]["made"]) == BIG
