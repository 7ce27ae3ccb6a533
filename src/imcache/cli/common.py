"""What every command of the face shares: settings from the group, and the line for people."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import click

from imcache.core.record import field, record
from imcache.core.store import Store, cache_root

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 user error; 2 bad usage; 3 internal error (a log is written); "
    "130 interrupted; the tool's own code when the tool fails."
)


@record
class Settings:
    base_dir: str
    catalogues: Sequence[str]  # --interfaces folders (IMCACHE_PATH is in `env`)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    color: str = "auto"  # auto, always, never
    config: Any = None  # the Config it came from, for `imcache config`


def store_of(ctx: click.Context) -> Store:
    """The cache that the group's --base-dir (or IMCACHE_BASE_DIR) names."""
    settings: Settings = ctx.obj
    return Store(cache_root(settings.base_dir))


def echo_line(text: str) -> None:
    """A line of results on stdout, file names as their bytes (Linux names need not be UTF-8)."""
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except UnicodeEncodeError:  # a name holding bytes that are not text: write those bytes
        click.echo(os.fsencode(text))
        return
    click.echo(text)


class ToolEcho:
    """The tool's output, passed on to our stderr as it comes; remembers if a line is left open
    (a progress bar, a message without its newline), so that our next line starts on its own."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def write(self, chunk: bytes) -> int:
        global _line_open
        if chunk:
            _line_open = not chunk.endswith((b"\n", b"\r"))
        return self.stream.write(chunk)

    def flush(self) -> None:
        self.stream.flush()


_line_open = False  # the tool's last echoed line has no end yet


def say(message: str) -> None:
    """One line for people, on stderr: stdout carries results only."""
    global _line_open
    if _line_open:
        click.echo("", err=True)
        _line_open = False
    click.echo(f"imcache: {message}", err=True)
