"""Run the tool: an argv list (never a shell) in the entry folder, output captured and echoed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, BinaryIO

from imcache.core.errors import TerminatedError, ToolNotFoundError

STOP_GRACE = 5.0  # seconds a stopped tool gets to clean up before it is killed
PUMP_GRACE = 2.0  # seconds to drain a stopped tool's output
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
                # Same process group as imcache, as any command run from a shell: a terminal's
                # Ctrl-C or hang-up and a CI job's kill reach the tool directly.
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
        previous = _raise_on_sigterm()
        try:
            exit_code = process.wait()
        except KeyboardInterrupt:
            # The terminal sent SIGINT to the tool too; make sure it ends before we do.
            _stop(process, signal.SIGINT)
            raise
        except TerminatedError:
            _stop(process, signal.SIGTERM)  # a lone SIGTERM to us must not orphan the tool
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            _drain(pumps, stopped=process.returncode is None or process.returncode < 0)
    return Completed(exit_code, started, time.monotonic() - clock)


def _drain(pumps: list[threading.Thread], stopped: bool) -> None:
    """Wait for the tool's output to end; a stopped tool's orphans may hold it open for ever."""
    deadline = time.monotonic() + PUMP_GRACE
    for pump in pumps:
        pump.join(timeout=max(0.0, deadline - time.monotonic()) if stopped else None)


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


def _raise_on_sigterm() -> signal.Handlers | Callable[..., object] | int | None:
    """SIGTERM becomes an exception while the tool runs; the handler it replaced, to restore."""
    if threading.current_thread() is not threading.main_thread():
        return None  # only the main thread may set handlers; a library caller keeps its own

    def terminated(signum: int, frame: object) -> None:
        raise TerminatedError(
            "imcache was asked to stop (SIGTERM); the tool was stopped and nothing was cached"
        )

    return signal.signal(signal.SIGTERM, terminated)


def _stop(process: subprocess.Popen[bytes], signum: int) -> None:
    """Pass the signal on (a signal to imcache alone); kill the tool after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
