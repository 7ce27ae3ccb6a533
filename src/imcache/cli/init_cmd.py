"""`imcache init [--shared] [--group GROUP]`: create the cache root, private or for a lab."""

from __future__ import annotations

import click

from imcache.cli.common import store_of


@click.command("init")
@click.option("--shared", is_flag=True, help="Make the cache shared by a group (a lab).")
@click.option("--group", metavar="GROUP", help="With --shared: the group (name or number).")
@click.pass_context
def init(ctx: click.Context, shared: bool, group: str | None) -> None:
    """Create the cache root: private to you (0700) unless --shared.

    A shared cache lets every member of GROUP use and add entries; each entry stays its
    maker's (the folders are setgid and sticky), so nobody's run can replace another's.
    """
    store = store_of(ctx)
    if group is not None and not shared:
        from imcache.core.errors import UsageError

        raise UsageError("--group goes with --shared", "add --shared")
    if shared:
        name = store.share(group)
        click.echo(f"{store.root}: shared with group {name}")
        return
    store.ensure()
    kind = "shared with its group" if store.is_shared() else "private"
    click.echo(f"{store.root}: {kind}")
