"""`imcache ls [PATTERN]`: the cache's entries, as lines, a table for a person, or JSON."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterator

import click

from imcache.cli.common import on_terminal
from imcache.cli.fast import keep_until_exit
from imcache.cli.options import (
    console,
    emit_json,
    entries_json_parts,
    entry_json,
    human_bytes,
    json_option,
    pass_store,
)
from imcache.core.inputs import inputs_json_parts, inputs_of_all
from imcache.core.moments import format_time
from imcache.core.scan import Entry, scan
from imcache.core.store import Store


@click.command("ls")
@click.argument("pattern", required=False)
@json_option("Print a JSON list (with inputs).")
@pass_store
def ls(store: Store, pattern: str | None, as_json: bool) -> None:
    """List entries: interface, key, size, created, last used (PATTERN: interface glob or part)."""
    entries = keep_until_exit(scan(store)).entries  # freed by no one: the process ends
    if pattern:
        wanted = pattern.lower()
        entries = [
            e
            for e in entries
            if fnmatch.fnmatchcase(e.interface.lower(), wanted) or wanted in e.interface.lower()
        ]
    if as_json and len(entries) > 1000:  # compact, as emit_json prints a long list
        for part in _json_parts(entries, fork=True):
            click.echo(part, nl=False)
        click.echo()
        return
    if as_json:
        rows = []
        for entry, inputs in zip(entries, inputs_of_all(entries), strict=True):
            row = entry_json(entry)
            row["inputs"] = inputs
            rows.append(row)
        emit_json(rows)
        return
    if entries and on_terminal(sys.stdout):  # results piped on stay plain lines
        _table(entries)
        return
    for entry in entries:
        click.echo(
            f"{entry.interface}  {entry.key[:12]}  {human_bytes(entry.bytes):>9}  "
            f"created {format_time(entry.created_ns)}  "
            f"used {format_time(entry.last_used_ns)}"
        )


def _json_rows(entries: list[Entry]) -> str:
    """What `emit_json([entry_json(e) | {"inputs": ...} ...], compact=True)` prints (a test
    holds them together): the inputs spliced in as their marks hold them."""
    return "".join(_json_parts(entries))


def _json_parts(entries: list[Entry], fork: bool = False) -> Iterator[str]:
    """`_json_rows` in the parts `ls --json` writes one by one (made by two processes where
    `fork`: the command's own)."""
    return entries_json_parts(entries, inputs_json_parts(entries), fork)


def _table(entries: list[Entry]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("interface", overflow="fold")  # the one column that may wrap
    for column, width in (("key", 12), ("size", 9), ("created", 16), ("last used", 16)):
        table.add_column(
            column, justify="right" if column == "size" else "left", no_wrap=True, min_width=width
        )
    for entry in entries:
        table.add_row(
            Text(entry.interface),  # a name is shown as it is, never read as markup
            entry.key[:12],
            human_bytes(entry.bytes),
            _minute(entry.created_ns),
            _minute(entry.last_used_ns),
        )
    console().print(table)


def _minute(ns: int) -> str:
    """Local time to the minute, for a person (the plain listing keeps the full form)."""
    return format_time(ns)[:16].replace("T", " ")
