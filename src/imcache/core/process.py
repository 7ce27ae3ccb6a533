"""Run the tool: an argv list (never a shell) in the run's folder, output captured and echoed."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from typing import IO, Any, BinaryIO

from imcache.core.datatype import datatype
from imcache.core.errors import CacheError, ImcacheError, TerminatedError, ToolNotFoundError
from imcache.core.layout import STDERR_LOG, STDOUT_LOG
from imcache.core.store import cache_errors

STOP_GRACE = 5.0  # seconds a stopped tool gets to clean up before it is killed
PUMP_GRACE = 2.0  # seconds to drain a stopped tool's output


@datatype
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
    latch = _StopLatch()  # before the tool starts: no moment where a stop orphans it
    pumps: list[_Pump] = []
    try:
        with cache_errors(cwd):
            pumps = [_Pump(os.path.join(cwd, name), echo) for name in (STDOUT_LOG, STDERR_LOG)]
        process = _start(argv, cwd, env, interface_name)
        exit_code = _wait(process, pumps, latch)
    finally:
        latch.restore()
        for pump in pumps:
            pump.finish(deadline=0.0)  # closes the logs if the tool never started
    failed = [pump for pump in pumps if pump.error is not None]
    if failed and exit_code == 0:  # a failed tool reports its own code, logs or not
        error = failed[0].error
        raise CacheError(
            f"cannot write the tool's log {failed[0].path}: {error.strerror if error else ''}",
            "free some space (or choose another --base-dir); nothing was cached",
        ) from error
    return Completed(exit_code, started, time.monotonic() - clock)


def _start(
    argv: list[str], cwd: str, env: Mapping[str, str], interface_name: str
) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(
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
        if exc.errno == errno.E2BIG:
            raise ImcacheError(
                f"the command line of {interface_name} is too long for this system "
                f"({sum(len(word) + 1 for word in argv)} bytes; Linux takes at most 128 KiB "
                "in one word)",
                "pass fewer or shorter values (a list file, if the tool takes one)",
            ) from exc
        raise ToolNotFoundError(
            f"cannot start {argv[0]!r} for {interface_name}: {exc.strerror or exc}",
            "install the tool or put it on PATH",
        ) from exc


def _wait(process: subprocess.Popen[bytes], pumps: list[_Pump], latch: _StopLatch) -> int:
    echo_lock = threading.Lock()
    try:
        latch.arm()  # a SIGTERM that came while the tool was starting is acted on now
        for pump, stream in zip(pumps, (process.stdout, process.stderr), strict=True):
            assert stream is not None
            pump.start(stream, echo_lock)
        return process.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the tool too; make sure it ends before we do.
        _stop(process, signal.SIGINT)
        raise
    except TerminatedError as exc:
        _stop(process, exc.signum)  # a lone SIGTERM or SIGHUP to us is passed on
        raise
    except BaseException:
        _stop(process, signal.SIGTERM)  # any failure of ours never orphans the tool
        raise
    finally:
        stopped = process.returncode is None or process.returncode < 0
        # A stopped tool's orphans may hold its pipes open: do not wait on them for ever.
        deadline = time.monotonic() + PUMP_GRACE if stopped else None
        for pump in pumps:
            pump.finish(deadline)


class _Pump:
    """Copies one of the tool's streams to its log and to `echo`, on a thread of its own.

    It reads to the end whatever happens to the log (a full disk): a tool whose pipe nobody
    reads would block for ever. A failed write is kept in `error` for the run to report."""

    def __init__(self, path: str, echo: BinaryIO | None) -> None:
        self.path = path
        self.echo = echo
        self.error: OSError | None = None
        self.log: BinaryIO | None = open(path, "wb")  # noqa: SIM115 (closed in finish)
        self.thread: threading.Thread | None = None

    def start(self, stream: IO[bytes], echo_lock: threading.Lock) -> None:
        self.thread = threading.Thread(target=self._copy, args=(stream, echo_lock), daemon=True)
        self.thread.start()

    def _copy(self, stream: IO[bytes], echo_lock: threading.Lock) -> None:
        while chunk := os.read(stream.fileno(), 65536):
            self._write_log(chunk)
            if self.echo is not None:
                with echo_lock, contextlib.suppress(OSError, ValueError):
                    self.echo.write(chunk)  # a closed terminal must not stop the copy
                    self.echo.flush()
        stream.close()

    def _write_log(self, chunk: bytes) -> None:
        if self.log is None or self.error is not None:
            return
        try:
            self.log.write(chunk)
        except OSError as exc:
            self.error = exc

    def finish(self, deadline: float | None) -> None:
        if self.thread is not None:
            self.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self.log is not None:
            try:
                self.log.close()  # flushes: a full disk may show only now
            except OSError as exc:
                self.error = self.error or exc
            self.log = None


# A cancelled CI job or `timeout` (SIGTERM), a closed terminal or ssh session (SIGHUP): the tool is
# stopped with the same signal, never left running without us.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def terminated(signum: int, what: str) -> TerminatedError:
    """The error of a stop request: named by its signal, exit 128+N as a shell reports it."""
    error = TerminatedError(f"imcache was asked to stop ({signal.Signals(signum).name}); {what}")
    error.exit_code = 128 + signum
    error.signum = signum
    return error


class _StopLatch:
    """SIGTERM and SIGHUP become TerminatedError while the tool runs (held until the tool exists).

    Only the main thread may set handlers: elsewhere (a library caller) nothing changes."""

    def __init__(self) -> None:
        self.armed = False
        self.pending: int | None = None
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if not self.armed:
            self.pending = signum  # the tool is not there yet: stop it as soon as it is
            return
        raise terminated(signum, "the tool was stopped and nothing was cached")

    def arm(self) -> None:
        self.armed = True
        if self.pending is not None:
            self._handle(self.pending, None)

    def restore(self) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous = {}
        if self.pending is not None and not self.armed:  # asked to stop before the tool started
            signum, self.pending = self.pending, None
            raise terminated(signum, "nothing was run")


def _stop(process: subprocess.Popen[bytes], signum: int) -> None:
    """Pass the signal on (a signal to imcache alone); kill the tool after a grace period."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
