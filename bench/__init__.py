"""Benchmarks of imcache, timed as whole processes: `python -m bench` runs them all.

A benchmark is a module with `add_arguments(parser)` and `run(args) -> list[Figure]`, listed in
`bench/__main__.py`. What they share lives here: the command, the clock, the table.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "bench" / ".data"  # git-ignored scratch space


@dataclass(frozen=True)
class Figure:
    """One measured number; it meets its target when it is at most `limit`."""

    name: str
    value: float
    limit: float | None = None
    unit: str = "s"
    imcache: str = "-"  # for a ratio: the two figures it compares, measured in the same run
    peer: str = "-"

    @property
    def met(self) -> bool | None:
        return None if self.limit is None else self.value <= self.limit

    def cells(self) -> tuple[str, ...]:
        suffix = "" if self.unit == "s" else f" {self.unit}"
        target = "-" if self.limit is None else f"<= {self.limit:g}{suffix}"
        met = {None: "-", True: "yes", False: "NO"}[self.met]
        return self.name, self.imcache, self.peer, f"{self.value:.3f}{suffix}", target, met


def imcache_command() -> str:
    """The project's own `imcache` (its venv), else the one on PATH."""
    own = REPO / ".venv" / "bin" / "imcache"
    found = str(own) if own.exists() else shutil.which("imcache")
    if found is None:
        raise SystemExit("no imcache command: install the project (make demo) first")
    return found


def machine() -> str:
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"machine: nproc={nproc}, python {platform.python_version()} ({sys.executable}), "
        f"{platform.platform()}"
    )


def timed(
    argv: Sequence[str], repeat: int = 1, **options: Any
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Median wall-clock seconds of `repeat` runs of a whole process, and the last run."""
    options.setdefault("stdout", subprocess.PIPE)
    options.setdefault("stderr", subprocess.PIPE)
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, check=False, text=True, **options)
        seconds.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return statistics.median(seconds), done


def print_table(figures: Sequence[Figure]) -> None:
    header = ("figure", "imcache", "peer", "value (s, or ratio)", "target", "met?")
    rows = [header, *(f.cells() for f in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for number, row in enumerate(rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("-+-".join("-" * width for width in widths))
