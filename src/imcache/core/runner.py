"""Run the tool: an argv list (never a shell) in the entry folder, output captured and echoed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, BinaryIO

from imcache.core.errors import ToolNotFoundError

STDOUT_LOG = "stdout.txt"
STDERR_LOG = "stderr.txt"


@dataclass(frozen=True)
class Completed:
    exit_code: int
    started: float
    seconds: float


def run_tool(
    argv: list[str],
    cwd: str,
    env: Mapping[str, str],
    echo: BinaryIO | None,
    interface_name: str,
) -> Completed:
    """Run to the end; stdout and stderr go to their logs and, as they come, to `echo`."""
    started = time.time()
    clock = time.monotonic()
    with (
        open(os.path.join(cwd, STDOUT_LOG), "wb") as out_log,
        open(os.path.join(cwd, STDERR_LOG), "wb") as err_log,
    ):
        try:
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise ToolNotFoundError(
                f"cannot start {argv[0]!r} for {interface_name}: {exc.strerror or exc}",
                "install the tool or put it on PATH",
            ) from exc
        echo_lock = threading.Lock()
        pumps = [
            threading.Thread(target=_pump, args=(stream, log, echo, echo_lock), daemon=True)
            for stream, log in ((process.stdout, out_log), (process.stderr, err_log))
        ]
        for pump in pumps:
            pump.start()
        try:
            exit_code = process.wait()
        except KeyboardInterrupt:
            # The terminal sent SIGINT to the tool too; make sure it ends before we do.
            _stop(process)
            raise
        finally:
            for pump in pumps:
                pump.join()
    return Completed(exit_code, started, time.monotonic() - clock)


def _pump(
    stream: IO[bytes] | None, log: BinaryIO, echo: BinaryIO | None, echo_lock: threading.Lock
) -> None:
    assert stream is not None
    while chunk := os.read(stream.fileno(), 65536):
        log.write(chunk)
        if echo is not None:
            with echo_lock:
                echo.write(chunk)
                echo.flush()
    stream.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
