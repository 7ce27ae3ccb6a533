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
    if remote_line(events):
        click.echo(remote_line(events))
    click.echo(upkeep_line(found))
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
    if remote_line(events):
        out.print(remote_line(events), highlight=False, markup=False)
    out.print(upkeep_line(found), highlight=False, markup=False)
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


def remote_line(events: dict[str, int]) -> str:
    """The remote tier's counts, once it was used: fetched, pushed, and failures (never silent)."""
    names = ("remote-hit", "remote-miss", "remote-push", "remote-fail")
    if not any(events.get(name) for name in names):
        return ""
    return (
        f"remote: {events.get('remote-hit', 0)} hits, {events.get('remote-miss', 0)} misses, "
        f"{events.get('remote-push', 0)} pushes, {events.get('remote-fail', 0)} failures"
    )


def upkeep_line(found: Stats) -> str:
    """What the log and the memo take (`clear` keeps both bounded)."""
    return (
        f"events.log: {human_bytes(found.events_log_bytes)}, digest memo: "
        f"{count(found.memo_files, 'file', 'files')}, {human_bytes(found.memo_bytes)}"
    )
