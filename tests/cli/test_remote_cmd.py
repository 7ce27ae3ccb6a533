"""`imcache remote check` and `imcache push [PATTERN]` against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import imcache, run_ok
from tests.remote_fixtures import MakeTool
from tests.remote_server import READ_ONLY, S3Server, free_ports


def check() -> tuple[int, dict[str, object]]:
    result = imcache("remote", "check", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_check_read_write(s3_server: S3Server, remote_env: dict[str, str]) -> None:
    code, report = check()
    assert code == 0
    assert report["readable"] is True and report["writable"] is True
    assert report["create_only"] is True and report["usable_for_writes"] is True
    assert report["remote"] == remote_env["IMCACHE_REMOTE"] and report["mode"] == "read-write"
    plain = run_ok("remote", "check").stdout
    assert "create-only: yes" in plain and "writable:    yes" in plain


def test_check_read_only_identity(
    s3_server: S3Server, remote_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials that may only read: a failure in read-write mode, fine in read-only mode."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", READ_ONLY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", READ_ONLY[1])
    code, report = check()
    assert code == 1 and report["readable"] is True and report["writable"] is False
    assert "IMCACHE_REMOTE_MODE=read-only" in str(report["problems"])
    monkeypatch.setenv("IMCACHE_REMOTE_MODE", "read-only")
    code, report = check()
    assert code == 0 and report["mode"] == "read-only" and report["writable"] is None


def test_check_unreachable_and_unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("obstore")
    result = imcache("remote", "check")
    assert result.exit_code == 2 and "no remote is configured" in result.stderr
    monkeypatch.setenv("IMCACHE_REMOTE", "s3://nowhere")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_ports(1)[0]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    code, report = check()
    assert code == 1 and report["readable"] is False and report["writable"] is None
    monkeypatch.setenv("IMCACHE_REMOTE", "https://not-s3")
    result = imcache("remote", "check")
    assert result.exit_code == 2 and "is not an s3:// URL" in result.stderr


def test_push_pattern(
    tmp_path: Path, remote_env: dict[str, str], maketool: MakeTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries made without the remote are pushed later; the pattern picks interfaces."""
    monkeypatch.delenv("IMCACHE_REMOTE")
    made = json.loads(run_ok(*maketool.args(700), "--json").stdout)
    monkeypatch.setenv("IMCACHE_REMOTE", remote_env["IMCACHE_REMOTE"])
    assert "pushed 0 entries" in run_ok("push", "fsl.*").stderr
    assert "pushed 1 entries" in run_ok("push", "test.*").stderr
    assert "1 already there" in run_ok("push").stderr
    fetched = json.loads(
        run_ok("--base-dir", str(tmp_path / "two"), *maketool.args(700), "--json").stdout
    )
    assert fetched["cached"] is True and maketool.calls() == 1
    assert (
        Path(fetched["outputs"]["made"]).read_bytes() == Path(made["outputs"]["made"]).read_bytes()
    )
    stats = run_ok("stats").stdout
    assert "remote: 0 hits, 0 misses, 1 pushes, 0 failures" in stats
    monkeypatch.setenv("IMCACHE_REMOTE_MODE", "read-only")
    assert imcache("push").exit_code == 2


def test_remote_flag_and_config_key(
    tmp_path: Path, remote_env: dict[str, str], maketool: MakeTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--remote and the config key `remote` name the remote as IMCACHE_REMOTE does."""
    url = remote_env["IMCACHE_REMOTE"]
    monkeypatch.delenv("IMCACHE_REMOTE")
    run_ok("--remote", url, *maketool.args(600))
    (tmp_path / "work" / "imcache.toml").write_text(f'remote = "{url}"\n')
    report = json.loads(
        run_ok("--base-dir", str(tmp_path / "two"), *maketool.args(600), "--json").stdout
    )
    assert report["cached"] is True and maketool.calls() == 1
    config = json.loads(run_ok("config", "--json").stdout)
    assert config["remote"]["value"] == url and config["remote"]["source"].endswith("imcache.toml")
