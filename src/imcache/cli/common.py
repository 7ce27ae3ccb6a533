"""What every command of the face shares: settings from the group, and the line for people."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import click

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 user error; 2 bad usage; 3 internal error (a log is written); "
    "130 interrupted; the tool's own code when the tool fails."
)


@dataclass(frozen=True)
class Settings:
    base_dir: str
    catalogues: Sequence[str]


def echo_line(text: str) -> None:
    """A line of results on stdout, file names as their bytes (Linux names need not be UTF-8)."""
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
    except UnicodeEncodeError:  # a name holding bytes that are not text: write those bytes
        click.echo(os.fsencode(text))
        return
    click.echo(text)


def say(message: str) -> None:
    """One line for people, on stderr: stdout carries results only."""
    click.echo(f"imcache: {message}", err=True)
