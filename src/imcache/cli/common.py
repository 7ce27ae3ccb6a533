"""What every command of the face shares: settings from the group, and the line for people."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import click

from imcache.core.datatype import datatype, field
from imcache.core.layout import cache_root
from imcache.core.store import Store

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 user error; 2 bad usage; 3 internal error (a log is written); "
    "130 interrupted (Ctrl-C); 143 stopped (SIGTERM); the tool's own code when the tool fails."
)


@datatype
class Settings:
    base_dir: str
    catalogues: Sequence[str]  # --interfaces folders (IMCACHE_PATH is in `env`)
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
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


# Line colours for a person at a terminal: a hit, a run, trouble.
TONES = {"hit": "green", "ran": "yellow", "warning": "yellow", "error": "red"}
_color_setting = "auto"  # the group's --color (or IMCACHE_COLOR, NO_COLOR, imcache.toml)


def use_color(setting: str) -> None:
    """Set by the group for this process: auto, always or never."""
    global _color_setting
    _color_setting = setting


def person_watching(stream: Any) -> bool:
    """A terminal, colours allowed (NO_COLOR unset), not a dumb one."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def on_terminal(stream: Any) -> bool:
    """Colours as asked, and `stream` a terminal: what redraws a line or lays out a table needs
    (in a pipe or a log, even with --color always, those would be garbage: colour only)."""
    return color_on(stream) and hasattr(stream, "isatty") and stream.isatty()


def color_on(stream: Any) -> bool:
    """Colours, spinners and tables on `stream`: 'always', or 'auto' where a person watches."""
    if _color_setting == "always":
        return True
    return _color_setting == "auto" and person_watching(stream)


def say(message: str, tone: str | None = None) -> None:
    """One line for people, on stderr: stdout carries results only. Coloured on a terminal
    (`tone`: hit, ran, warning, error; 'error:' and 'warning:' lines find theirs alone)."""
    global _line_open
    if _line_open:
        click.echo("", err=True)
        _line_open = False
    line = f"imcache: {message}"
    tone = tone or next((t for t in ("error", "warning") if message.startswith(f"{t}:")), None)
    if tone is not None and color_on(sys.stderr):
        click.echo(click.style(line, fg=TONES[tone]), err=True, color=True)
        return
    click.echo(line, err=True)


def count(number: int, one: str, many: str) -> str:
    """`1 entry`, `2 entries`: a number with its noun in agreement."""
    return f"{number} {one if number == 1 else many}"
