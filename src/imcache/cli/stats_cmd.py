"""`imcache stats`: entries, bytes, hits and misses (and since when), per interface."""

from __future__ import annotations

import sys

import click

from imcache.cli.common import count, on_terminal
from imcache.cli.options import console, emit_json, human_bytes, json_option, pass_store
from imcache.core.stats import Stats, stats
from imcache.core.store import Store


@click.command("stats")
@json_option()
@pass_store
def stats_cmd(store: Store, as_json: bool) -> None:
    """Entries, bytes, hits and misses (and since when), per interface."""
    found = stats(store)
    if as_json:
        emit_json(found.__dict__)
        return
    if on_terminal(sys.stdout):
        _table(found)
        return
    click.echo(f"entries: {found.entries}, {human_bytes(found.bytes)}")
    since = f" since {found.since}" if found.since else ""
    events = found.events
    click.echo(
        f"hits: {events.get('hit', 0)}, misses: {events.get('miss', 0)}, "
        f"failures: {events.get('fail', 0)}{since}"
    )
    for name, row in found.per_interface.items():
        click.echo(
            f"  {name}: {count(row.get('entries', 0), 'entry', 'entries')}, "
            f"{human_bytes(row.get('bytes', 0))}, {count(row.get('hits', 0), 'hit', 'hits')}, "
            f"{count(row.get('misses', 0), 'miss', 'misses')}"
        )


def _table(found: Stats) -> None:
    from rich.table import Table
    from rich.text import Text

    events = found.events
    out = console()
    out.print(f"[bold]entries[/] {found.entries}, {human_bytes(found.bytes)}", highlight=False)
    since = f" since {found.since}" if found.since else ""
    out.print(
        f"[green]hits {events.get('hit', 0)}[/], [yellow]misses {events.get('miss', 0)}[/], "
        f"[red]failures {events.get('fail', 0)}[/]{since}",
        highlight=False,
    )
    if not found.per_interface:
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("interface", no_wrap=True)
    for column in ("entries", "size", "hits", "misses"):
        table.add_column(column, justify="right", no_wrap=True)
    for name, row in found.per_interface.items():
        table.add_row(
            Text(name),
            str(row.get("entries", 0)),
            human_bytes(row.get("bytes", 0)),
            str(row.get("hits", 0)),
            str(row.get("misses", 0)),
        )
    out.print(table)
