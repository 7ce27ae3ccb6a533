"""`imcache session start|status`: mark the start of a pipeline run, for 'clear --previous'."""

from __future__ import annotations

import click

from imcache.cli.common import count, say
from imcache.cli.options import emit_json, human_bytes, json_option, pass_store
from imcache.core.scan import scan
from imcache.core.sessions import current_session, start_session
from imcache.core.store import Store


@click.group("session")
def session() -> None:
    """Mark the start of a pipeline run, for 'clear --previous'."""


@session.command("start")
@pass_store
def session_start(store: Store) -> None:
    """Start a session: entries not used from now on are what 'clear --previous' removes."""
    started = start_session(store)
    click.echo(f"session {started.id} started {started.started}")


@session.command("status")
@json_option()
@pass_store
def session_status(store: Store, as_json: bool) -> None:
    """The latest session, and how many entries it has used so far."""
    current = current_session(store)
    entries = scan(store).entries
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
    click.echo(f"used since: {count(len(used), 'entry', 'entries')}")
    click.echo(
        f"not used since: {count(len(unused), 'entry', 'entries')}, {human_bytes(unused_bytes)} "
        "(what 'imcache clear --previous' removes)"
    )
