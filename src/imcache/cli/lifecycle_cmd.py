"""`imcache session`, `clear`, `ls`, `show`, `stats`: the cache's disk, seen and managed."""

from __future__ import annotations

import fnmatch
import json
import os
import sys
import time
from typing import Any

import click

from imcache.cli.common import on_terminal, say, store_of
from imcache.core import lifecycle
from imcache.core.errors import UsageError


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{count} B"


def emit_json(payload: Any, compact: bool = False) -> None:
    # Indented JSON goes through Python's slow encoder; a long listing is printed compact.
    click.echo(json.dumps(payload, indent=None if compact else 2))


@click.group("session")
def session() -> None:
    """Mark the start of a pipeline run, for 'clear --previous'."""


@session.command("start")
@click.pass_context
def session_start(ctx: click.Context) -> None:
    """Start a session: entries not used from now on are what 'clear --previous' removes."""
    started = lifecycle.start_session(store_of(ctx))
    click.echo(f"session {started.id} started {started.started}")


@session.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def session_status(ctx: click.Context, as_json: bool) -> None:
    """The latest session, and how many entries it has used so far."""
    store = store_of(ctx)
    current = lifecycle.current_session(store)
    entries = lifecycle.scan(store).entries
    if current is None:
        if as_json:
            emit_json({"session": None, "entries": len(entries)})
        else:
            say("no session started yet; run 'imcache session start' at a pipeline's start")
        return
    used = [e for e in entries if e.last_used_ns >= current.started_ns]
    unused = [e for e in entries if e.last_used_ns < current.started_ns]
    unused_bytes = sum(e.bytes for e in unused)
    payload = {
        "session": current.id,
        "started": current.started,
        "used": len(used),
        "not_used": len(unused),
        "not_used_bytes": unused_bytes,
    }
    if as_json:
        emit_json(payload)
        return
    click.echo(f"session {current.id} started {current.started}")
    click.echo(f"used since: {len(used)} entries")
    click.echo(
        f"not used since: {len(unused)} entries, {human_bytes(unused_bytes)} "
        "(what 'imcache clear --previous' removes)"
    )


@click.command("clear")
@click.option("--previous", is_flag=True, help="Entries not used since the latest session start.")
@click.option("--since", metavar="DATE", help="Entries not used since DATE (YYYY-MM-DD[THH:MM]).")
@click.option("--older-than", metavar="AGE", help="Entries not used for AGE (30d, 12h, 2w).")
@click.option("--max-size", metavar="SIZE", help="Then least recently used until under SIZE.")
@click.option("--all", "everything", is_flag=True, help="Every entry.")
@click.option("--dry-run", is_flag=True, help="Show what would go; remove nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def clear(
    ctx: click.Context,
    previous: bool,
    since: str | None,
    older_than: str | None,
    max_size: str | None,
    everything: bool,
    dry_run: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Remove cache entries: policies combine; entries in use, links and stray files are kept."""
    store = store_of(ctx)
    if not (previous or since or older_than or max_size or everything):
        raise UsageError(
            "clear needs a policy",
            "give --previous, --since DATE, --older-than AGE, --max-size SIZE or --all",
        )
    bounds = []
    if since:
        bounds.append(lifecycle.parse_since(since))
    if older_than:
        bounds.append(time.time_ns() - lifecycle.parse_age(older_than))
    limit = lifecycle.parse_size(max_size) if max_size else None
    if previous:
        bounds.append(lifecycle.previous_bound(store))
    policy = lifecycle.Policy(max(bounds) if bounds else None, limit, everything)
    report = lifecycle.clear(store, policy, dry_run)
    _render_clear(report, quiet, as_json)


def _render_clear(report: lifecycle.ClearReport, quiet: bool, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "dry_run": report.dry_run,
                "removed": [entry_json(e) for e in report.removed],
                "freed_bytes": report.freed,
                "kept": len(report.kept),
                "in_use": [entry_json(e) for e in report.in_use],
                "not_yours": [entry_json(e) for e in report.not_yours],
                "swept": report.swept,
                "strays": report.strays,
            }
        )
        return
    if quiet:
        return
    verb = "would remove" if report.dry_run else "removed"
    for entry in report.removed:
        click.echo(f"{verb} {entry.interface} {entry.key[:12]} {human_bytes(entry.bytes)}")
    for entry in report.in_use:
        say(f"kept {entry.interface} {entry.key[:12]}: in use by another process")
    for entry in report.not_yours:
        say(f"kept {entry.interface} {entry.key[:12]}: another user's entry (shared cache)")
    for path in report.swept:
        say(f"{'would sweep' if report.dry_run else 'swept'} leftover {path}")
    for path in report.strays:
        say(f"left alone {path}: not an imcache entry")
    total = "would free" if report.dry_run else "freed"
    say(
        f"{total} {human_bytes(report.freed)} in {len(report.removed)} entries; "
        f"{len(report.kept) + len(report.in_use) + len(report.not_yours)} kept"
    )


def entry_json(entry: lifecycle.Entry) -> dict[str, Any]:
    return {
        "interface": entry.interface,
        "key": entry.key,
        "path": entry.path,
        "bytes": entry.bytes,
        "created": lifecycle.format_time(entry.created_ns),
        "last_used": lifecycle.format_time(entry.last_used_ns),
    }


@click.command("ls")
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (with inputs).")
@click.pass_context
def ls(ctx: click.Context, pattern: str | None, as_json: bool) -> None:
    """List entries: interface, key, size, created, last used (PATTERN: interface glob or part)."""
    entries = lifecycle.scan(store_of(ctx)).entries
    if pattern:
        wanted = pattern.lower()
        entries = [
            e
            for e in entries
            if fnmatch.fnmatchcase(e.interface.lower(), wanted) or wanted in e.interface.lower()
        ]
    if as_json:
        rows = []
        for entry in entries:
            row = entry_json(entry)
            row["inputs"] = _inputs(lifecycle.read_record(entry))
            rows.append(row)
        emit_json(rows, compact=len(rows) > 1000)
        return
    if entries and on_terminal(sys.stdout):  # results piped on stay plain lines
        _ls_table(entries)
        return
    for entry in entries:
        click.echo(
            f"{entry.interface}  {entry.key[:12]}  {human_bytes(entry.bytes):>9}  "
            f"created {lifecycle.format_time(entry.created_ns)}  "
            f"used {lifecycle.format_time(entry.last_used_ns)}"
        )


def _ls_table(entries: list[lifecycle.Entry]) -> None:
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
    _console().print(table)


def _minute(ns: int) -> str:
    """Local time to the minute, for a person (the plain listing keeps the full form)."""
    return lifecycle.format_time(ns)[:16].replace("T", " ")


def _console() -> Any:
    """A console for a person (the caller checked), on stdout: tables are results."""
    from rich.console import Console

    return Console(file=sys.stdout, force_terminal=True)


def _inputs(record: dict[str, Any]) -> dict[str, str]:
    inputs = {}
    for line in record.get("key_fields", []):
        label, _, shown = str(line).partition(" = ")
        if label.startswith("input."):
            inputs[label[6:]] = shown
    return inputs


def _complete_key(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
    from imcache.cli.completion import complete_key

    return complete_key(ctx, param, incomplete)


@click.command("show")
@click.argument("key", shell_complete=_complete_key)
@click.option("--json", "as_json", is_flag=True, help="Print the record and more, as JSON.")
@click.pass_context
def show(ctx: click.Context, key: str, as_json: bool) -> None:
    """One entry (KEY or a prefix of it): argv, inputs with digests, outputs, logs, timings."""
    entry = lifecycle.find_entry(store_of(ctx), key)
    record = lifecycle.read_record(entry)
    details = {
        **entry_json(entry),
        "argv": record.get("argv", []),
        "inputs": _inputs(record),
        "env": record.get("env", {}),
        "tool": record.get("tool", {}),
        "outputs": record.get("outputs", {}),
        "extra_files": record.get("extra_files", []),
        "logs": {s: os.path.join(entry.path, f"{s}.txt") for s in ("stdout", "stderr")},
        "started": record.get("started"),
        "seconds": record.get("seconds"),
    }
    if as_json:
        emit_json(details)
        return
    for name, value in details.items():
        if isinstance(value, dict):
            click.echo(f"{name}:")
            for inner, item in value.items():
                click.echo(f"  {inner}: {item if not isinstance(item, dict) else item.get('path')}")
        elif isinstance(value, list):
            click.echo(f"{name}: " + " ".join(str(v) for v in value))
        else:
            click.echo(f"{name}: {value}")


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Entries, bytes, hits and misses (and since when), per interface."""
    found = lifecycle.stats(store_of(ctx))
    if as_json:
        emit_json(found.__dict__)
        return
    if on_terminal(sys.stdout):
        _stats_table(found)
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
            f"  {name}: {row.get('entries', 0)} entries, {human_bytes(row.get('bytes', 0))}, "
            f"{row.get('hits', 0)} hits, {row.get('misses', 0)} misses"
        )


def _stats_table(found: lifecycle.Stats) -> None:
    from rich.table import Table
    from rich.text import Text

    events = found.events
    console = _console()
    console.print(f"[bold]entries[/] {found.entries}, {human_bytes(found.bytes)}", highlight=False)
    since = f" since {found.since}" if found.since else ""
    console.print(
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
    console.print(table)
