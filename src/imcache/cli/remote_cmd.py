"""`imcache remote check` and `imcache push [PATTERN]`: the remote tier, seen and filled."""

from __future__ import annotations

import fnmatch

import click

from imcache.cli.common import Settings, say, store_of
from imcache.cli.options import emit_json, human_bytes
from imcache.core.errors import RemoteError, UsageError


@click.group("remote")
def remote() -> None:
    """The remote cache behind the local one (IMCACHE_REMOTE=s3://BUCKET[/PREFIX])."""


@remote.command("check")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def check(ctx: click.Context, as_json: bool) -> int:
    """Reachability, credentials, create-only support, and whether runs may write to it.

    Exits 1 when the remote cannot be read, or may not be written in read-write mode."""
    from imcache.core.remote.check import check_remote

    settings: Settings = ctx.obj
    report = check_remote(settings.env)
    if as_json:
        emit_json({**report.__dict__, "usable_for_writes": report.usable_for_writes})
    else:
        click.echo(f"remote:      {report.remote}")
        click.echo(f"endpoint:    {report.endpoint or '(AWS, from AWS_REGION)'}")
        click.echo(f"mode:        {report.mode}")
        click.echo(f"readable:    {_yes(report.readable)}")
        click.echo(f"writable:    {_yes(report.writable)}")
        click.echo(f"create-only: {_yes(report.create_only)}")
        for problem in report.problems:
            say(f"warning: {problem}")
    failed = not report.readable or (report.mode == "read-write" and not report.usable_for_writes)
    return 1 if failed else 0


def _yes(value: bool | None) -> str:
    return "not tried" if value is None else ("yes" if value else "no")


@click.command("push")
@click.argument("pattern", required=False)
@click.pass_context
def push(ctx: click.Context, pattern: str | None) -> int:
    """Upload local entries to the remote (PATTERN: interface glob or part, as 'imcache ls').

    Entries the remote has already are left as they are: the first record of a key stands."""
    from imcache.core.remote.check import configured
    from imcache.core.remote.client import RemoteClient
    from imcache.core.remote.probe import create_only_honoured
    from imcache.core.remote.push import push_entry
    from imcache.core.scan import scan

    settings: Settings = ctx.obj
    remote_settings = configured(settings.env)
    if remote_settings.read_only:
        raise UsageError("IMCACHE_REMOTE_MODE is read-only: nothing is pushed", "unset it to push")
    store = store_of(ctx)
    client = RemoteClient(remote_settings)
    if not create_only_honoured(client, store):
        raise RemoteError(
            f"remote {remote_settings.where} does not honour create-only writes "
            "(If-None-Match): nothing is pushed",
            "use an S3 server that does (AWS S3, MinIO, SeaweedFS, Ceph RGW, Garage)",
        )
    entries = scan(store).entries
    if pattern:
        wanted = pattern.lower()
        entries = [
            e
            for e in entries
            if fnmatch.fnmatchcase(e.interface.lower(), wanted) or wanted in e.interface.lower()
        ]
    pushed = present = failed = sent = 0
    for entry in entries:
        try:
            result = push_entry(store, entry.path, client)
        except RemoteError as exc:
            say(f"warning: {entry.interface} {entry.key[:12]}: {exc}")
            failed += 1
            continue
        pushed, present = pushed + result.won, present + (not result.won)
        sent += result.uploaded
        if result.won:
            store.log_event("remote-push", entry.interface, entry.key)
    say(
        f"pushed {pushed} entries ({human_bytes(sent)} uploaded); {present} already there"
        + (f"; {failed} failed" if failed else "")
    )
    return 1 if failed else 0
