"""`imcache explain NAME [inputs]`: what enters the key, hit or miss, and why a miss misses."""

from __future__ import annotations

import json

import click

from imcache.cli.common import EXIT_CODES_HELP, Settings, echo_line
from imcache.cli.run_cmd import RunCommand, build_request, run_arguments, show_interface_help
from imcache.core.errors import UsageError
from imcache.core.explain import Explanation, as_json, explain
from imcache.core.export import parse_exports

EXPLAIN_HELP = f"""Show every field that enters the key of 'imcache run NAME [inputs]', then
'hit KEY' or 'miss'; on a miss, the nearest entry of the same interface and each field that
differs from it. Takes exactly run's arguments (those that do not change the key, such as
--force or --export, are accepted and change nothing). Runs nothing and writes nothing.

{EXIT_CODES_HELP}"""


@click.command(
    "explain",
    cls=RunCommand,
    help=EXPLAIN_HELP,
    add_help_option=False,
    context_settings={"ignore_unknown_options": True},
)
@run_arguments("Print one JSON object with the fields, hit or miss and the differences.")
@click.pass_context
def explain_cmd(
    ctx: click.Context,
    name: str | None,
    words: tuple[str, ...],
    as_json: bool,
    get_name: str | None,
    force: bool,
    show_help: bool,
    exports: tuple[str, ...] = (),
    symlink: bool = False,
    overwrite: bool = False,
    depends: tuple[str, ...] = (),
) -> None:
    settings: Settings = ctx.obj
    if name is None:
        if show_help:
            click.echo(ctx.get_help())
            return
        raise UsageError(
            "missing interface NAME",
            "usage: imcache explain NAME [inputs]; see 'imcache interfaces'",
        )
    if show_help:
        show_interface_help(ctx, settings, name)
        return
    wanted = parse_exports(exports)
    request = build_request(settings, name, words, get_name, wanted, depends, read_only=True)
    found = explain(request)
    if as_json:
        click.echo(json.dumps(_json(found), indent=2))
        return
    _print(found)


def _json(found: Explanation) -> dict[str, object]:
    return as_json(found)


def _print(found: Explanation) -> None:
    plan = found.plan
    echo_line(f"interface: {plan.interface.name}")
    for line in plan.key_lines:
        echo_line(f"  {line}")
    if found.hit:
        echo_line(f"hit {plan.key}")
        return
    echo_line(f"miss (key {plan.key})")
    if found.damage:
        echo_line(f"an entry with this key is not used: {found.damage}")
    nearest = found.nearest
    if nearest is None:
        echo_line(f"no other entry of {plan.interface.name} to compare with")
        return
    echo_line(f"nearest entry: {nearest.key} (of {found.compared} compared)")
    for difference in nearest.differences:
        echo_line(f"  {difference}")
