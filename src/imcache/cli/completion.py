"""Shell completion through click: interface names, each interface's own inputs, their choices,
files for File inputs, and entry keys for `show`.

Completion runs with click's resilient parsing: the group's callback does not run, so the
catalogue folders and the cache are worked out here from the parsed flags and the environment.
Nothing here may fail loudly: a broken definition or a missing cache completes to nothing.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

from imcache.cli.fast_complete import Item, input_completions, interface_names, plain
from imcache.core.errors import ImcacheError

SHELLS = ("bash", "zsh", "fish")


def completion_script(cli: click.Command, shell: str) -> str:
    """The script that `eval "$(imcache completion bash)"` (or a completions folder) loads."""
    cls = get_completion_class(shell)
    assert cls is not None, shell
    return cls(cli, {}, "imcache", "_IMCACHE_COMPLETE").source()


def _root_params(ctx: click.Context) -> dict[str, Any]:
    return ctx.find_root().params


def _folders(ctx: click.Context) -> list[str]:
    from imcache.core.interfaces.registry import search_path

    return search_path(list(_root_params(ctx).get("catalogues") or ()), os.environ)


def complete_interface(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    return _items(plain(interface_names(_folders(ctx), incomplete)))


def complete_words(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """After `imcache run NAME`: the value of the input being given, or the next option."""
    from imcache.core.interfaces.registry import resolve

    name = ctx.params.get("name")
    if not name:
        return []
    try:
        interface = resolve(name, _folders(ctx))
    except ImcacheError:
        return []
    words = list(ctx.params.get("words") or ())
    return _items(input_completions(interface, words, incomplete))


def _items(found: list[Item]) -> list[CompletionItem]:
    """The lists fast_complete makes (the completion without click), as click's items."""
    return [CompletionItem(value, type=kind, help=help) for value, kind, help in found]


def complete_key(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Entry keys (and their interface, as help) for `imcache show KEY`."""
    from imcache.core.layout import cache_root, is_key

    base = _root_params(ctx).get("base_dir") or os.environ.get("IMCACHE_BASE_DIR") or os.getcwd()
    root = cache_root(base)
    items = []
    try:
        interfaces = sorted(e.name for e in os.scandir(root) if e.is_dir() and "." in e.name)
        for interface in interfaces:
            for entry in os.scandir(os.path.join(root, interface)):
                if is_key(entry.name) and entry.name.startswith(incomplete):
                    items.append(CompletionItem(entry.name, help=interface))
    except OSError:
        return []
    return items
