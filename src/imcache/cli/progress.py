"""A progress bar on stderr while inputs are hashed, for a person watching a terminal only.

Nothing shows for hashing that ends within a second, in pipes and CI, with NO_COLOR or
TERM=dumb; rich is imported only when the bar is about to show.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

SHOW_AFTER_S = 1.0


def wanted(stream: TextIO) -> bool:
    """Only where a person watches: a terminal, colours allowed, not a dumb one."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


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
