"""The remote tier against a real S3 server (SeaweedFS, as the tests start it) on this machine.

Rows: a remote hit against a local miss of the same job (a 1 s tool writing 64 MiB: what a second
machine saves), and pushing and fetching 1 GiB through `imcache` against plain streaming with
the same client (obstore's put from a file, get streamed to a file), measured in the same run:
imcache's cost over the transfer is hashing every byte (sha256 for the bucket, xxh3 for the entry).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench import DATA, Figure, imcache_command, timed

JOB_MIB = 64
RATIO_LIMIT = 2.0  # imcache push or fetch against the bare client: two digests per byte, a process
MAKE = {
    "name": "maketool",
    "tool-version": "1.0",
    "schema-version": "0.5",
    "description": "a 1 s tool that writes SIZE random bytes",
    "command-line": "maketool [SIZE]",
    "inputs": [
        {"id": "size", "name": "size", "type": "Number", "integer": True, "value-key": "[SIZE]"}
    ],
    "output-files": [{"id": "made", "name": "made", "path-template": "made.bin"}],
}


def add_arguments(parser: argparse._ArgumentGroup) -> None:
    parser.add_argument("--remote-mib", type=int, default=1024, help="size of the pushed file")


def run(args: argparse.Namespace) -> list[Figure]:
    from tests.remote_server import READ_WRITE, start_seaweedfs

    DATA.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="remote-", dir=DATA))
    server = start_seaweedfs(work / "seaweedfs")
    try:
        env = {**os.environ, **server.env(READ_WRITE, prefix="bench")}
        env["PATH"] = f"{_tool(work)}{os.pathsep}{env['PATH']}"
        return _job(work, env) + _throughput(work, env, server, args.remote_mib)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _tool(work: Path) -> Path:
    (work / "catalogue" / "test").mkdir(parents=True)
    (work / "catalogue" / "test" / "Make.json").write_text(json.dumps(MAKE))
    folder = work / "bin"
    folder.mkdir()
    script = folder / "maketool"
    script.write_text('#!/bin/sh\nsleep 1\nhead -c "$1" /dev/urandom > made.bin\n')
    script.chmod(0o755)
    return folder


def _job(work: Path, env: dict[str, str]) -> list[Figure]:
    argv = ["--interfaces", str(work / "catalogue"), "run", "test.Make"]
    size = str(JOB_MIB * 1024 * 1024)
    cli = imcache_command()
    local_env = {k: v for k, v in env.items() if k != "IMCACHE_REMOTE"}
    miss, _ = timed([cli, "--base-dir", str(work / "local"), *argv, "--size", size], env=local_env)
    timed([cli, "--base-dir", str(work / "pusher"), *argv, "--size", size], env=env)
    hit, done = timed([cli, "--base-dir", str(work / "fetcher"), *argv, "--size", size], env=env)
    if "fetched from remote" not in done.stderr:
        raise SystemExit(f"the remote bench expected a remote hit: {done.stderr}")
    return [
        Figure(f"local miss, a 1 s tool writing {JOB_MIB} MiB", miss),
        Figure(f"remote hit of the same job ({JOB_MIB} MiB fetched)", hit),
        Figure("remote hit / local miss", hit / miss, 1.0, "x", "remote hit", "local miss"),
    ]


def _throughput(work: Path, env: dict[str, str], server: object, mib: int) -> list[Figure]:
    import obstore
    from tests.remote_server import S3Server

    assert isinstance(server, S3Server)
    argv = ["--interfaces", str(work / "catalogue"), "run", "test.Make", "--size"]
    size = str(mib * 1024 * 1024)
    cli = imcache_command()
    read_only = {**env, "IMCACHE_REMOTE_MODE": "read-only"}
    _, done = timed([cli, "--base-dir", str(work / "big"), *argv, size, "--json"], env=read_only)
    made = json.loads(done.stdout)["outputs"]["made"]
    push, _ = timed([cli, "--base-dir", str(work / "big"), "push"], env=env)
    fetch, _ = timed([cli, "--base-dir", str(work / "big2"), *argv, size], env=env)

    store = server.bucket_store(prefix="plain")
    start = time.perf_counter()
    obstore.put(store, "big", Path(made), chunk_size=8 * 1024 * 1024, max_concurrency=4)
    plain_put = time.perf_counter() - start
    start = time.perf_counter()
    with open(work / "plain.bin", "wb") as handle:
        for chunk in obstore.get(store, "big").stream(min_chunk_size=8 * 1024 * 1024):
            handle.write(chunk)
    plain_get = time.perf_counter() - start
    rate = mib / 1024
    return [
        Figure(f"imcache push, {mib} MiB", push),
        Figure(f"plain obstore put, {mib} MiB", plain_put),
        Figure("push / plain put", push / plain_put, RATIO_LIMIT, "x", "push", "obstore put"),
        Figure(f"imcache fetch (a remote hit), {mib} MiB", fetch),
        Figure(f"plain obstore get to a file, {mib} MiB", plain_get),
        Figure("fetch / plain get", fetch / plain_get, RATIO_LIMIT, "x", "fetch", "obstore get"),
        Figure("push throughput", rate / push, None, "GiB/s"),
        Figure("fetch throughput", rate / fetch, None, "GiB/s"),
    ]
