"""What every command of the face shares: settings from the group, and the line for people."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from imcache.cli.lines import (  # the colour setting and the open line, shared with fast.py
    ToolEcho,
    color_on,
    line_open,
    on_terminal,
    people_line,
    person_watching,
    use_color,
)
from imcache.core.datatype import datatype, field
from imcache.core.layout import cache_root
from imcache.core.store import Store

__all__ = ["ToolEcho", "on_terminal", "person_watching", "use_color"]  # their old home

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


def say(message: str, tone: str | None = None) -> None:
    """One line for people, on stderr: stdout carries results only. Coloured on a terminal
    (`tone`: hit, ran, warning, error; 'error:' and 'warning:' lines find theirs alone)."""
    if line_open[0]:
        click.echo("", err=True)
        line_open[0] = False
    line, color = people_line(message, tone)
    if color is not None and color_on(sys.stderr):
        click.echo(click.style(line, fg=color), err=True, color=True)
        return
    click.echo(line, err=True)


def count(number: int, one: str, many: str) -> str:
    """`1 entry`, `2 entries`: a number with its noun in agreement."""
    return f"{number} {one if number == 1 else many}"
