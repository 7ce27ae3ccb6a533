"""For a person watching a terminal only: a progress bar on stderr while inputs are hashed, and
a spinner with the elapsed time while the tool runs and is silent.

Nothing shows for hashing that ends within a second, for a tool that keeps talking or ends
within half a second, in pipes and CI, with NO_COLOR or TERM=dumb; rich is imported only when
something is about to show.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, BinaryIO, TextIO

SHOW_AFTER_S = 1.0
SPIN_AFTER_S = 0.5  # the tool's silence before the spinner shows: none between its lines
SPIN_TICK_S = 0.1
ERASE_LINE = b"\r\x1b[2K"


class HashProgress:
    """Called with each run of bytes hashed (from several threads); shows a bar after 1 s."""

    def __init__(self, stream: TextIO | None = None, force: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.force = force  # for tests: a bar on a stream that is not a terminal
        self.started = time.monotonic()
        self.done = 0
        self.lock = threading.Lock()
        self.bar: Any = None
        self.task: Any = None

    def __call__(self, count: int) -> None:
        with self.lock:
            self.done += count
            if self.bar is None and time.monotonic() - self.started >= SHOW_AFTER_S:
                self._show()
            if self.bar is not None:
                self.bar.update(self.task, completed=self.done)

    def _show(self) -> None:
        from rich.console import Console
        from rich.progress import DownloadColumn, Progress, TimeElapsedColumn, TransferSpeedColumn

        console = Console(file=self.stream, force_terminal=self.force or None)
        self.bar = Progress(
            "imcache: hashing inputs",
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("hash", total=None)

    def close(self) -> None:
        with self.lock:
            if self.bar is not None:
                self.bar.stop()
                self.bar = None


class ToolSpinner:
    """`⠋ imcache: NAME: running TOOL (0:03)` on the last line while the tool is silent.

    The runner writes the tool's output through `write` (this is the reporter's echo): the
    spinner's line is erased first, so the tool's bytes reach the terminal as they were written.
    The spinner comes back only after SPIN_AFTER_S of silence at the start of a line, so it never
    draws over a line the tool left open (its own progress bar, redrawn with \\r)."""

    def __init__(self, echo: BinaryIO, raw: BinaryIO) -> None:
        self.echo = echo  # the tool's bytes go on through this (it notes an open line)
        self.raw = raw  # the spinner's own drawing (not an open line for our next message)
        self.lock = threading.Lock()
        self.label = ""
        self.started = self.last_output = time.monotonic()
        self.at_line_start = True
        self.shown = False
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.render: Any = None

    def start(self, label: str) -> None:
        self.label = label
        self.started = self.last_output = time.monotonic()
        self.stopped.clear()
        self.thread = threading.Thread(target=self._tick, daemon=True)
        self.thread.start()

    def write(self, chunk: bytes) -> int:
        with self.lock:
            self._erase()
            written = self.echo.write(chunk)
            if chunk:
                self.at_line_start = chunk.endswith(b"\n")
                self.last_output = time.monotonic()
            return written

    def flush(self) -> None:
        self.echo.flush()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        with self.lock:
            self._erase()

    def _tick(self) -> None:
        while not self.stopped.wait(SPIN_TICK_S):
            with self.lock:
                now = time.monotonic()
                if self.at_line_start and now - self.last_output >= SPIN_AFTER_S:
                    self._draw(now)

    def _draw(self, now: float) -> None:
        if self.render is None:
            self.render = _spinner_renderer(self.raw)
        try:
            self.raw.write(ERASE_LINE + self.render(self.label, now - self.started, now))
            self.raw.flush()
        except (OSError, ValueError):  # a closed terminal: the run goes on without a spinner
            self.stopped.set()
            return
        self.shown = True

    def _erase(self) -> None:
        if self.shown:
            self.shown = False
            try:
                self.raw.write(ERASE_LINE)
                self.raw.flush()
            except (OSError, ValueError):
                pass


def _spinner_renderer(raw: BinaryIO) -> Any:
    """A function (label, seconds, now) -> one coloured line's bytes, no wider than the
    terminal (a wrapped line could not be erased with \\r)."""
    from rich.console import Console
    from rich.spinner import Spinner
    from rich.text import Text

    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    spinner = Spinner("dots" if encoding.lower().startswith("utf") else "line", style="yellow")

    def render(label: str, seconds: float, now: float) -> bytes:
        try:
            width = os.get_terminal_size(raw.fileno()).columns or 80  # 0: a size never set
        except (OSError, ValueError, AttributeError):
            width = 80
        console = Console(force_terminal=True, width=max(20, width - 1))
        elapsed = f"{int(seconds // 60)}:{int(seconds % 60):02d}"
        spinner.text = Text.assemble(f"imcache: {label} ", (f"({elapsed})", "dim"))
        with console.capture() as captured:
            console.print(spinner.render(now), end="", no_wrap=True, overflow="ellipsis", crop=True)
        return captured.get().encode(encoding, errors="replace")

    return render
