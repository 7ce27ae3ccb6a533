"""What the commands that look at the cache share: --json, the store they act on, and how an
entry, a size and a JSON result are shown."""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Generator, Iterator
from functools import partial, update_wrapper
from itertools import compress, repeat
from operator import attrgetter, ne
from typing import Any, Concatenate, ParamSpec, TypeVar

import click

from imcache.cli.common import store_of
from imcache.cli.fast import ends_unfreed
from imcache.core.forked import iter_in_two
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
        # A command over the cache holds its 100,000 entries to the end, none of them in a
        # cycle: without this the cyclic collector walks them again and again while the
        # output is made (a third of `ls --json`), to find nothing.
        # Nor at the end, where a command kept its result for an exit that frees nothing
        # (`ends_unfreed`): enabled again, it walked all of them once more (0.1 s).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return command(store_of(ctx), *args, **kwargs)
        finally:
            if collecting and not ends_unfreed():
                gc.enable()

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


Inputs = list[str] | Callable[[list[Entry]], list[str]]  # each entry's, or a part's by a call


def entries_json_parts(
    entries: list[Entry], inputs: Inputs | None = None, fork: bool = False
) -> Generator[str, None, None]:
    """What `json.dumps([entry_json(e) ...])` prints, each row with `"inputs": ` and its text
    from `inputs` if given (a text an entry, or what makes a part's: tests hold them
    together), in parts of a few thousand
    rows to be written as they come (the memory of one part serves the next: 40 MB in one
    string cost as much in page faults). A row is one `%` of a template over the entries'
    columns, in C loops (`map`), instead of the encoder's walk over 100,000 dicts; moments are
    made in a batch. With `fork` (a command's process), the second half's parts are made by a
    forked child meanwhile (`iter_in_two`)."""
    starts = list(range(0, len(entries), PART))
    yield "["
    for number, text in enumerate(iter_in_two(partial(_part, entries, inputs), starts, fork, 1)):
        yield (", " if number else "") + text
    yield "]"


def _part(entries: list[Entry], inputs: Inputs | None, start: int) -> str:
    part = entries[start : start + PART]
    if inputs is None or isinstance(inputs, list):
        texts = None if inputs is None else inputs[start : start + PART]
    else:
        texts = inputs(part)
    return ", ".join(_rows(part, texts))


def _rows(entries: list[Entry], inputs: list[str] | None) -> Iterator[str]:
    from json.encoder import encode_basestring_ascii as quoted  # what json.dumps uses

    created = format_times(list(map(CREATED, entries)))
    # Most entries were last used when made (or the moment repeats): formatted once.
    again = list(map(ne, map(LAST_USED, entries), map(CREATED, entries)))
    used_again = iter(format_times(list(compress(map(LAST_USED, entries), again))))
    used = [next(used_again) if fresh else made for fresh, made in zip(again, created, strict=True)]
    heads = {name: quoted(name) for name in set(map(INTERFACE, entries))}  # a few, shared
    columns = (
        map(heads.__getitem__, map(INTERFACE, entries)),
        map(quoted, map(KEY, entries)),
        map(quoted, map(PATH, entries)),
        map(BYTES, entries),
        created,
        used,
        repeat("}", len(entries)) if inputs is None else map(', "inputs": %s}'.__mod__, inputs),
    )
    return map(ROW.__mod__, zip(*columns, strict=True))


PART = 4096  # rows
ROW = '{"interface": %s, "key": %s, "path": %s, "bytes": %d, "created": "%s", "last_used": "%s"%s'
INTERFACE, KEY, PATH = attrgetter("interface"), attrgetter("key"), attrgetter("path")
BYTES, CREATED, LAST_USED = (
    attrgetter("bytes"),
    attrgetter("created_ns"),
    attrgetter("last_used_ns"),
)


def console() -> Any:
    """A console for a person (the caller checked), on stdout: tables are results."""
    from rich.console import Console

    return Console(file=sys.stdout, force_terminal=True)
