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


def test_the_first_record_stands(
    tmp_path: Path,
    s3_server: S3Server,
    remote_env: dict[str, str],
    maketool: MakeTool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two publishers of one key both past the look for a record (the race's window): the
    second's create-only write gets 412 and the first's record stays as it was."""
    from imcache.core.layout import cache_root
    from imcache.core.remote.client import RemoteClient
    from imcache.core.remote.push import push_entry
    from imcache.core.remote.settings import remote_settings
    from imcache.core.store import Store

    monkeypatch.setenv("IMCACHE_REMOTE_MODE", "read-only")  # two local entries, pushed below
    made = [
        json.loads(run_ok("--base-dir", str(tmp_path / name), *maketool.args(900), "--json").stdout)
        for name in ("one", "two")
    ]
    assert made[0]["key"] == made[1]["key"] and maketool.calls() == 2
    monkeypatch.delenv("IMCACHE_REMOTE_MODE")
    settings = remote_settings(dict(os.environ))
    assert settings is not None
    client = RemoteClient(settings)
    record = f"ac/test.Make/{made[0]['key']}.json"
    size = client.size
    monkeypatch.setattr(client, "size", lambda path: None if path == record else size(path))

    stores = [Store(cache_root(str(tmp_path / name))) for name in ("one", "two")]
    first = push_entry(stores[0], made[0]["work_dir"], client)
    stored = client.read(record)
    second = push_entry(stores[1], made[1]["work_dir"], client)
    assert first.won is True and second.won is False
    assert client.read(record) == stored
