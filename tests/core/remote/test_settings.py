"""IMCACHE_REMOTE and friends; obstore only where needed, and one clear line if it is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imcache.core.errors import UsageError
from imcache.core.remote.settings import parse_url, remote_settings
from tests.conftest import imcache, run_ok
from tests.remote_fixtures import MakeTool


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://lab", "lab", ""),
        ("s3://lab/", "lab", ""),
        ("s3://lab/imcache/ci", "lab", "imcache/ci"),
        ("s3://lab//a//b/", "lab", "a/b"),
    ],
)
def test_parse_url(url: str, bucket: str, prefix: str) -> None:
    assert parse_url(url) == (bucket, prefix)


@pytest.mark.parametrize("url", ["lab", "https://lab", "s3://", "s3:///x", "s3://lab/../x"])
def test_parse_url_refuses(url: str) -> None:
    with pytest.raises(UsageError):
        parse_url(url)


def test_settings_from_the_environment() -> None:
    assert remote_settings({}) is None and remote_settings({"IMCACHE_REMOTE": " "}) is None
    env = {
        "IMCACHE_REMOTE": "s3://lab/p",
        "IMCACHE_REMOTE_MODE": "read-only",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "eu-west-1",
    }
    settings = remote_settings(env)
    assert settings is not None
    assert (settings.bucket, settings.prefix, settings.read_only) == ("lab", "p", True)
    assert (settings.endpoint, settings.region) == ("http://127.0.0.1:9000", "eu-west-1")
    assert settings.where == "s3://lab/p at http://127.0.0.1:9000"
    with pytest.raises(UsageError, match="IMCACHE_REMOTE_MODE"):
        remote_settings({**env, "IMCACHE_REMOTE_MODE": "write-only"})


def test_missing_obstore_is_one_clear_line(
    maketool: MakeTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMCACHE_REMOTE", "s3://lab")
    monkeypatch.setitem(sys.modules, "obstore.store", None)  # import obstore.store fails
    result = imcache(*maketool.args(10))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "imcache: error: a remote is configured (s3://lab) but obstore is not installed; "
        "pip install 'imcache[remote]' (or unset IMCACHE_REMOTE)"
    ]
    assert maketool.calls() == 0


def test_a_local_hit_never_loads_the_remote_tier(
    maketool: MakeTool, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    run_ok(*maketool.args(10))
    monkeypatch.setenv("IMCACHE_REMOTE", "s3://lab")
    probe = (
        "import sys\nfrom imcache.cli.main import cli\n"
        "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if 'remote' in m or 'obstore' in m))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *maketool.args(10), "--json"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    *report, loaded = done.stdout.strip().splitlines()
    assert json.loads("\n".join(report))["cached"] is True
    assert loaded == "[]"
