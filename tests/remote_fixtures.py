"""Fixtures of the remote tier's tests: a real S3 server (one per session), and a tool to cache.

Registered for every test folder by `pytest_plugins` in tests/conftest.py.

`test.Make` runs `maketool SIZE`, which writes SIZE random bytes to `made.bin` (so two runs never
give the same bytes: only a fetch can hand two base folders identical ones) and counts its calls.
Each test gets its own prefix in the bucket, so that tests never see each other's entries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import first_on_path
from tests.remote_server import READ_WRITE, S3Server, start_seaweedfs


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    pytest.importorskip("obstore")
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def remote_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This test's remote (its own prefix), set in the environment; the variables returned."""
    env = s3_server.env(READ_WRITE, prefix=f"t-{uuid.uuid4().hex[:12]}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("IMCACHE_REMOTE_MODE", raising=False)
    return env


@dataclass(frozen=True)
class MakeTool:
    catalogue: Path
    counter: Path

    def args(self, size: int = 1000, *rest: str) -> list[str]:
        return ["--interfaces", str(self.catalogue), "run", "test.Make", "--size", str(size), *rest]

    def calls(self) -> int:
        return len(self.counter.read_text().splitlines()) if self.counter.exists() else 0


MAKE = {
    "name": "maketool",
    "tool-version": "1.0",
    "schema-version": "0.5",
    "description": "write SIZE random bytes to made.bin",
    "command-line": "maketool [SIZE]",
    "inputs": [
        {"id": "size", "name": "size", "type": "Number", "integer": True, "value-key": "[SIZE]"}
    ],
    "output-files": [{"id": "made", "name": "made", "path-template": "made.bin"}],
}


def make_tool(folder: Path, monkeypatch: pytest.MonkeyPatch, before: str = "") -> MakeTool:
    """The catalogue and the script (first on PATH); `before` runs first (a pause, a kill)."""
    catalogue = folder / "catalogue"
    (catalogue / "test").mkdir(parents=True)
    (catalogue / "test" / "Make.json").write_text(json.dumps(MAKE))
    counter = folder / "maketool-calls"
    script = (
        f'#!/bin/sh\necho x >> "{counter}"\n{before}\n'
        'head -c "$1" /dev/urandom > made.bin\necho "made $1 bytes"\n'
    )
    first_on_path(folder / "bin", monkeypatch, {"maketool": script})
    return MakeTool(catalogue, counter)


@pytest.fixture
def maketool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MakeTool:
    return make_tool(tmp_path / "maketool", monkeypatch)
