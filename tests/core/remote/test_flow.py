"""The remote tier in a run, against a real S3 server (SeaweedFS): fetch on a miss, push after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import imcache, run_ok
from tests.remote_fixtures import MakeTool, make_tool
from tests.remote_server import READ_ONLY, READ_WRITE, S3Server, start_seaweedfs


def run_in(base: Path, *args: str) -> tuple[dict[str, object], str]:
    result = run_ok("--base-dir", str(base), *args, "--json")
    return json.loads(result.stdout), result.stderr


def made_bytes(report: dict[str, object]) -> bytes:
    outputs = report["outputs"]
    assert isinstance(outputs, dict)
    return Path(outputs["made"]).read_bytes()


def events(base: Path) -> list[str]:
    log = base / "imcache_mem" / "events.log"
    return [line.split()[1] for line in log.read_text().splitlines()] if log.exists() else []


def test_round_trip_between_two_base_folders(
    tmp_path: Path, remote_env: dict[str, str], maketool: MakeTool
) -> None:
    """The second base folder is a remote hit: the tool does not run, the bytes are identical."""
    first, _ = run_in(tmp_path / "one", *maketool.args(5000))
    assert first["cached"] is False and maketool.calls() == 1
    assert events(tmp_path / "one") == ["remote-miss", "miss", "remote-push"]

    second, stderr = run_in(tmp_path / "two", *maketool.args(5000))
    assert maketool.calls() == 1, "a remote hit must not run the tool"
    assert second["cached"] is True and second["key"] == first["key"]
    assert made_bytes(second) == made_bytes(first)
    size = sum(p.stat().st_size for p in Path(str(first["work_dir"])).iterdir() if p.name[0] != ".")
    assert "fetched from remote" in stderr and "bytes" in stderr
    assert events(tmp_path / "two") == ["remote-hit"]
    # the fetched entry is an ordinary local entry: a later run hits it, and verify passes it
    third, stderr = run_in(tmp_path / "two", *maketool.args(5000))
    assert third["cached"] is True and "fetched from remote" not in stderr
    assert events(tmp_path / "two") == ["remote-hit", "hit"]
    assert imcache("--base-dir", str(tmp_path / "two"), "verify").exit_code == 0
    assert size > 5000


def prefix_of(remote_env: dict[str, str]) -> str:
    return remote_env["IMCACHE_REMOTE"].split("/", 3)[3]


def remote_action(s3: S3Server, remote_env: dict[str, str], key: object) -> dict[str, Any]:
    import obstore

    store = s3.bucket_store(prefix=prefix_of(remote_env))
    payload = bytes(obstore.get(store, f"ac/test.Make/{key}.json").bytes())
    action = json.loads(payload)
    assert isinstance(action, dict)
    return action


def made_blob(action: dict[str, Any]) -> str:
    sha = action["files"]["made.bin"]["sha256"]
    return f"cas/{sha[:2]}/{sha}"


@pytest.mark.parametrize("damage", ["tampered", "deleted"])
def test_a_damaged_blob_is_a_miss(
    tmp_path: Path, s3_server: S3Server, remote_env: dict[str, str], maketool: MakeTool, damage: str
) -> None:
    """A blob whose bytes changed (same size), or that is gone: the whole fetch is discarded
    with a warning and a counter, the tool runs, and no partial entry is left behind."""
    import obstore

    first, _ = run_in(tmp_path / "one", *maketool.args(3000))
    action = remote_action(s3_server, remote_env, first["key"])
    store = s3_server.bucket_store(prefix=prefix_of(remote_env))
    if damage == "tampered":
        obstore.put(store, made_blob(action), b"x" * 3000)
    else:
        obstore.delete(store, made_blob(action))

    second, stderr = run_in(tmp_path / "two", *maketool.args(3000))
    assert maketool.calls() == 2, "a damaged remote entry must not be a hit"
    assert second["cached"] is False
    expected = "sha256" if damage == "tampered" else "missing"
    assert f"warning: remote: remote entry test.Make {str(first['key'])[:12]}" in stderr
    assert expected in stderr and stderr.count("warning:") == 1, stderr
    assert "remote-fail" in events(tmp_path / "two")
    assert made_bytes(second) != b"x" * 3000 and len(made_bytes(second)) == 3000
    folder = tmp_path / "two" / "imcache_mem" / "test.Make"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == [second["key"]]


def test_read_only_identity_gets_403_and_the_run_succeeds(
    tmp_path: Path, s3_server: S3Server, remote_env: dict[str, str], maketool: MakeTool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Credentials that may only read: the push is refused (403), the run succeeds, one warning."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", READ_ONLY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", READ_ONLY[1])
    report, stderr = run_in(tmp_path / "one", *maketool.args(2000))
    assert report["cached"] is False and len(made_bytes(report)) == 2000
    assert "warning: remote:" in stderr and "403" in stderr and "access denied" in stderr
    assert stderr.count("warning:") == 1
    assert events(tmp_path / "one") == ["remote-miss", "miss", "remote-fail"]
    # in read-only mode (what an untrusted CI job uses), nothing is tried, nothing is said
    monkeypatch.setenv("IMCACHE_REMOTE_MODE", "read-only")
    report, stderr = run_in(tmp_path / "two", *maketool.args(2000))
    assert report["cached"] is False and "warning" not in stderr
    assert events(tmp_path / "two") == ["remote-miss", "miss"]


def test_read_only_mode_reads(
    tmp_path: Path, remote_env: dict[str, str], maketool: MakeTool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull request's job (read-only, read-only credentials) hits what the main branch pushed."""
    first, _ = run_in(tmp_path / "one", *maketool.args(1500))
    monkeypatch.setenv("IMCACHE_REMOTE_MODE", "read-only")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", READ_ONLY[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", READ_ONLY[1])
    second, stderr = run_in(tmp_path / "two", *maketool.args(1500))
    assert second["cached"] is True and maketool.calls() == 1
    assert made_bytes(second) == made_bytes(first) and "warning" not in stderr


def test_server_stopped_mid_run(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool runs while the server goes away: the run succeeds, one warning, one counter;
    the next run (the server still down) warns once and runs."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs-doomed"))
    try:
        for name, value in server.env(READ_WRITE, prefix="doomed").items():
            monkeypatch.setenv(name, value)
        assert server.process is not None
        kill = f"kill -KILL -{server.process.pid}; sleep 0.2"
        tool = make_tool(tmp_path / "maketool", monkeypatch, before=kill)
        report, stderr = run_in(tmp_path / "one", *tool.args(1000))
        assert server.process.wait(timeout=10) != 0, "the tool stopped the server"
        assert report["cached"] is False and len(made_bytes(report)) == 1000
        assert stderr.count("warning: remote:") == 1, stderr
        assert events(tmp_path / "one") == ["remote-miss", "miss", "remote-fail"]

        report, stderr = run_in(tmp_path / "two", *tool.args(1000))
        assert report["cached"] is False and tool.calls() == 2
        assert stderr.count("warning: remote:") == 1, "unreachable: warned once, push not tried"
        assert events(tmp_path / "two") == ["remote-fail", "miss"]
    finally:
        server.stop()
