"""What the commands that look at the cache share: --json, the store they act on, and how an
entry, a size and a JSON result are shown."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import update_wrapper
from itertools import compress
from typing import Any, Concatenate, ParamSpec, TypeVar

import click

from imcache.cli.common import store_of
from imcache.core.moments import format_time, format_times
from imcache.core.scan import Entry
from imcache.core.store import Store

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


def json_option(help: str = "Print one JSON object.") -> Callable[[F], F]:
    """`--json`, passed on as `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def pass_store(command: Callable[Concatenate[Store, P], R]) -> Callable[P, R]:
    """The command gets the cache that the group's settings name, in place of click's context."""

    @click.pass_context
    def with_store(ctx: click.Context, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return command(store_of(ctx), *args, **kwargs)

    return update_wrapper(with_store, command)


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


def entry_json(entry: Entry) -> dict[str, Any]:
    return {
        "interface": entry.interface,
        "key": entry.key,
        "path": entry.path,
        "bytes": entry.bytes,
        "created": format_time(entry.created_ns),
        "last_used": format_time(entry.last_used_ns),
    }


def entries_json(entries: list[Entry], inputs: list[str] | None = None) -> str:
    """What `json.dumps([entry_json(e) ...])` prints, each row with `"inputs": ` and its text
    from `inputs` if given (tests hold them together), a row at a time: the encoder's work is
    one string per row instead of a walk over 100,000 dicts, and moments are made in a batch."""
    from json.encoder import encode_basestring_ascii as quoted  # what json.dumps uses

    heads: dict[str, str] = {}  # an interface's text, quoted once: entries share a few
    created = format_times([entry.created_ns for entry in entries])
    # Most entries were last used when made (or the moment repeats): formatted once.
    again = [entry.last_used_ns != entry.created_ns for entry in entries]
    used_again = iter(format_times(list(compress((e.last_used_ns for e in entries), again))))
    used = [next(used_again) if fresh else made for fresh, made in zip(again, created, strict=True)]
    tails = [", " + '"inputs": ' + text + "}" for text in inputs] if inputs else None
    rows = []
    for number, entry in enumerate(entries):
        interface = entry.interface
        head = heads.get(interface)
        if head is None:
            head = heads[interface] = f'{{"interface": {quoted(interface)}, "key": '
        rows.append(
            f'{head}{quoted(entry.key)}, "path": {quoted(entry.path)}, "bytes": {entry.bytes}, '
            f'"created": "{created[number]}", "last_used": "{used[number]}"'
            + ("}" if tails is None else tails[number])
        )
    return "[" + ", ".join(rows) + "]"


def console() -> Any:
    """A console for a person (the caller checked), on stdout: tables are results."""
    from rich.console import Console

    return Console(file=sys.stdout, force_terminal=True)
