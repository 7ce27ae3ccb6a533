"""What every command of the face shares: settings from the group, and the line for people."""

from __future__ import annotations

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


def say(message: str) -> None:
    """One line for people, on stderr: stdout carries results only."""
    click.echo(f"imcache: {message}", err=True)
