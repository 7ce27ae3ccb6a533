"""`imcache show KEY`: one entry (KEY or a prefix of it), its record, logs and timings."""

from __future__ import annotations

import os
from typing import Any

import click

from imcache.cli.options import emit_json, entry_json, json_option, pass_store
from imcache.core.entry import record_inputs
from imcache.core.layout import STDERR_LOG, STDOUT_LOG
from imcache.core.scan import find_entry, read_record
from imcache.core.store import Store


def _complete_key(ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
    from imcache.cli.completion import complete_key

    return complete_key(ctx, param, incomplete)


@click.command("show")
@click.argument("key", shell_complete=_complete_key)
@json_option("Print the record and more, as JSON.")
@pass_store
def show(store: Store, key: str, as_json: bool) -> None:
    """One entry (KEY or a prefix of it): argv, inputs with digests, outputs, logs, timings."""
    entry = find_entry(store, key)
    record = read_record(entry)
    details = {
        **entry_json(entry),
        "argv": record.get("argv", []),
        "inputs": record_inputs(record),
        "env": record.get("env", {}),
        "tool": record.get("tool", {}),
        "outputs": record.get("outputs", {}),
        "extra_files": record.get("extra_files", []),
        "logs": {
            "stdout": os.path.join(entry.path, STDOUT_LOG),
            "stderr": os.path.join(entry.path, STDERR_LOG),
        },
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
