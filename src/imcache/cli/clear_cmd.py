"""`imcache clear`: remove cache entries by policy; entries in use, links and strays are kept."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

import click

from imcache.cli.common import count, say
from imcache.cli.fast import keep_until_exit
from imcache.cli.options import BYTES as SIZE
from imcache.cli.options import (
    INTERFACE,
    KEY,
    emit_json,
    entries_json_parts,
    entry_json,
    human_bytes,
    json_option,
    pass_store,
)
from imcache.cli.params import AGE_NS, BYTES, MOMENT
from imcache.core.clear import ClearReport, Policy, clear
from imcache.core.errors import ImcacheError, NoSessionError, UsageError
from imcache.core.files import Deleter
from imcache.core.scan import Entry
from imcache.core.sessions import latest_start
from imcache.core.store import Store


@click.command("clear")
@click.option("--previous", is_flag=True, help="Entries not used since the latest session start.")
@click.option(
    "--since", type=MOMENT, metavar="DATE", help="Entries not used since DATE (YYYY-MM-DD[THH:MM])."
)
@click.option(
    "--older-than", type=AGE_NS, metavar="AGE", help="Entries not used for AGE (30d, 12h, 2w)."
)
@click.option(
    "--max-size", type=BYTES, metavar="SIZE", help="Then least recently used until under SIZE."
)
@click.option("--all", "everything", is_flag=True, help="Every entry.")
@click.option("--failed", is_flag=True, help="Failed attempts, at once (else swept after an hour).")
@click.option("--dry-run", is_flag=True, help="Show what would go; remove nothing.")
@click.option(
    "--wait",
    is_flag=True,
    help="Return once the files are deleted (else a large clear deletes them in the background).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@json_option()
@pass_store
def clear_cmd(
    store: Store,
    previous: bool,
    since: int | None,
    older_than: int | None,
    max_size: int | None,
    everything: bool,
    failed: bool,
    dry_run: bool,
    wait: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Remove cache entries: policies combine; entries in use, links and stray files are kept."""
    if not (
        previous
        or since is not None
        or older_than is not None
        or max_size is not None
        or everything
        or failed
    ):
        raise UsageError(
            "clear needs a policy",
            "give --previous, --since DATE, --older-than AGE, --max-size SIZE, --failed or --all",
        )
    bounds = [] if since is None else [since]
    if older_than is not None:
        bounds.append(time.time_ns() - older_than)
    if previous:
        bounds.append(_previous_bound(store))
    policy = Policy(max(bounds) if bounds else None, max_size, everything, failed)
    # Entries leave the cache at once; the files of a large clear's are deleted by a detached
    # process unless --wait (a dry run sets nothing aside, so it never starts one).
    deleter = Deleter() if wait or dry_run else Deleter(background_root=store.root)
    report = keep_until_exit(clear(store, policy, dry_run, deleter=deleter, fork=True))
    _render(report, quiet, as_json, deleter.in_background)


def _previous_bound(store: Store) -> int:
    """--previous: entries not used since the latest session start."""
    try:
        return latest_start(store)
    except NoSessionError as error:
        raise ImcacheError(
            f"{error.message}, so --previous has nothing to go by",
            f"{error.hint}; nothing was removed",
        ) from None


def _render(report: ClearReport, quiet: bool, as_json: bool, in_background: int = 0) -> None:
    if as_json:
        _render_json(report, in_background)
        return
    if quiet:
        return
    verb = "would remove" if report.dry_run else "removed"
    if report.removed:  # one write: an echo per line costs more than the line at 80,000
        click.echo("\n".join(_removed_lines(verb, report.removed)))
    for entry in report.in_use:
        say(f"kept {entry.interface} {entry.key[:12]}: in use by another process")
    for entry in report.not_yours:
        say(f"kept {entry.interface} {entry.key[:12]}: another user's entry (shared cache)")
    for path in report.swept:
        say(f"{'would sweep' if report.dry_run else 'swept'} leftover {path}")
    for path in report.strays:
        say(f"left alone {path}: not an imcache entry")
    _say_bounded(report)
    total = "would free" if report.dry_run else "freed"
    say(
        f"{total} {human_bytes(report.freed)} in {count(len(report.removed), 'entry', 'entries')}; "
        f"{len(report.kept) + len(report.in_use) + len(report.not_yours)} kept"
    )
    if in_background:
        say(
            f"deleting the files of {count(in_background, 'entry', 'entries')} in the background "
            "(--wait waits for them)"
        )


def _removed_lines(verb: str, removed: list[Entry]) -> Iterator[str]:
    """`{verb} {interface} {key[:12]} {human_bytes(bytes)}` of each entry, in C loops (`map`
    of a `%` template): 80,000 of them took 0.3 s one f-string at a time. Sizes repeat: each
    is written out once."""
    sizes = {size: human_bytes(size) for size in set(map(SIZE, removed))}
    columns = (
        map(INTERFACE, removed),
        map(SHORT_KEY, map(KEY, removed)),
        map(sizes.__getitem__, map(SIZE, removed)),
    )
    return map((verb.replace("%", "%%") + " %s %s %s").__mod__, zip(*columns, strict=True))


SHORT_KEY = itemgetter(slice(12))


def _say_bounded(report: ClearReport) -> None:
    """What became of events.log and the digest memo, when anything did."""
    events = report.events
    if events is not None and (events.folded or events.set_aside):
        verb = "would compact" if report.dry_run else "compacted"
        say(
            f"{verb} events.log: {events.folded} lines folded into {events.counts} counts, "
            f"{events.set_aside} set aside ({human_bytes(events.bytes_before)} -> "
            f"{human_bytes(events.bytes_after)})"
        )
    if report.memo_pruned:
        verb = "would prune" if report.dry_run else "pruned"
        say(
            f"{verb} {count(report.memo_pruned, 'digest memo file', 'digest memo files')} "
            f"no entry needs ({human_bytes(report.memo_freed)})"
        )


def _render_json(report: ClearReport, in_background: int) -> None:
    listed = ("removed", "in_use", "not_yours")
    payload: dict[str, Any] = {
        "dry_run": report.dry_run,
        "removed": report.removed,
        "freed_bytes": report.freed,
        "kept": len(report.kept),
        "in_use": report.in_use,
        "not_yours": report.not_yours,
        "swept": report.swept,
        "strays": report.strays,
        "events_log": None if report.events is None else report.events.__dict__,
        "memo": {"pruned": report.memo_pruned, "freed_bytes": report.memo_freed},
        "deleting_in_background": in_background,
    }
    if len(report.removed) + len(report.in_use) <= 1000:
        emit_json({k: [entry_json(e) for e in v] if k in listed else v for k, v in payload.items()})
        return
    # Compact, as `ls --json`: what emit_json(..., compact=True) prints (a test holds them
    # together), the long lists of entries written a part at a time.
    for number, (name, value) in enumerate(payload.items()):
        click.echo(("{" if number == 0 else ", ") + f"{json.dumps(name)}: ", nl=False)
        for part in entries_json_parts(value, fork=True) if name in listed else [json.dumps(value)]:
            click.echo(part, nl=False)
    click.echo("}")
