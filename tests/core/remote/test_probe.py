"""The create-only probe: a server that ignores If-None-Match is used read-only, with a warning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import imcache, run_ok
from tests.remote_fixtures import MakeTool
from tests.remote_server import READ_WRITE, REGION, NoPreconditionServer


@pytest.fixture
def careless(monkeypatch: pytest.MonkeyPatch) -> Iterator[NoPreconditionServer]:
    pytest.importorskip("obstore")
    with NoPreconditionServer().running() as server:
        env = {
            "IMCACHE_REMOTE": "s3://careless",
            "AWS_ENDPOINT_URL": server.endpoint,
            "AWS_ACCESS_KEY_ID": READ_WRITE[0],
            "AWS_SECRET_ACCESS_KEY": READ_WRITE[1],
            "AWS_REGION": REGION,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield server


def test_probe_refuses_writes_to_a_server_without_create_only(
    careless: NoPreconditionServer, maketool: MakeTool, cache_root: Path
) -> None:
    result = run_ok(*maketool.args(800), "--json")
    assert json.loads(result.stdout)["cached"] is False
    assert "does not honour create-only writes" in result.stderr
    assert result.stderr.count("warning:") == 1
    assert not [name for name in careless.objects if "/ac/" in name or "/cas/" in name]
    assert careless.objects == {} or all("/probes/" in name for name in careless.objects)
    # remembered in the cache root, for a day: the next run does not probe again
    remembered = json.loads((cache_root / "remote-probes.json").read_text())
    assert [value["create_only"] for value in remembered.values()] == [False]

    check = imcache("remote", "check")
    assert check.exit_code == 1
    assert "create-only: no" in check.stdout
    pushed = imcache("push")
    assert pushed.exit_code == 1 and "does not honour create-only" in pushed.stderr
