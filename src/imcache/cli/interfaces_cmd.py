"""`imcache interfaces [PATTERN]` and `imcache validate FILE...`."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import click

from imcache.cli.common import Settings, say
from imcache.core.errors import DefinitionError
from imcache.core.interfaces.loader import load_interface
from imcache.core.interfaces.registry import list_all, search_path
from imcache.core.plan import which


@click.command("interfaces")
@click.argument("pattern", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def interfaces(ctx: click.Context, pattern: str | None, as_json: bool) -> None:
    """List the interfaces that resolve, and from where (PATTERN: a glob or a part of the name)."""
    settings: Settings = ctx.obj
    rows = []
    seen: set[str] = set()
    for found in list_all(search_path(settings.catalogues, settings.env)):
        if pattern and not _matches(found.name, pattern):
            continue
        rows.append(
            {
                "name": found.name,
                "tool": _tool_of(found.path),
                "catalogue": found.catalogue,
                "path": found.path,
                "shadowed": found.name in seen,
            }
        )
        seen.add(found.name)
    rows += _nipype_rows(settings, pattern, seen)
    for row in rows:
        row["found"] = bool(row["tool"] and which(str(row["tool"]), settings.env))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        say(f"no interface matches {pattern!r}" if pattern else "no interfaces found")
        return
    width = max(len(str(row["name"])) for row in rows)
    for row in rows:
        note = " (shadowed)" if row["shadowed"] else ""
        on_path = "" if row["found"] else " [not on PATH]"
        click.echo(f"{row['name']:<{width}}  {row['tool']}{on_path}  {row['path']}{note}")


def _nipype_rows(settings: Settings, pattern: str | None, seen: set[str]) -> list[dict[str, Any]]:
    """nipype's interfaces, last on the search path (the first listing imports nipype)."""
    from imcache.core.interfaces.nipype_source import list_nipype

    catalogue, names = list_nipype(settings.env)
    rows = []
    for name, tool in sorted(names.items()):
        if name in seen or (pattern and not _matches(name, pattern)):
            continue  # a definition earlier on the path holds the name: nipype's is not used
        path = f"{catalogue}: nipype.interfaces.{name}"
        rows.append(
            {"name": name, "tool": tool, "catalogue": catalogue, "path": path, "shadowed": False}
        )
    return rows


def _matches(name: str, pattern: str) -> bool:
    lowered, wanted = name.lower(), pattern.lower()
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(lowered, wanted)
    return wanted in lowered


def _tool_of(path: str) -> str:
    """The program a definition runs, read cheaply (a broken file shows an empty tool)."""
    from imcache.core.errors import ImcacheError
    from imcache.core.interfaces.definition_file import read_definition

    try:
        words = str(json.loads(read_definition(path)).get("command-line", "")).split()
    except (ImcacheError, ValueError, AttributeError, RecursionError):
        return ""
    return words[0] if words else ""


@click.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="Print only the problems and the tally.")
def validate(files: tuple[str, ...], quiet: bool) -> None:
    """Check interface definitions; each problem names the file and field. Exit 1 if any fails."""
    failed = 0
    for path in files:
        try:
            load_interface(path, "check.definition")
        except DefinitionError as error:
            failed += 1
            click.echo(f"FAIL {error.message}")
            continue
        if not quiet:
            click.echo(f"ok   {path}")
    say(f"{len(files) - failed} of {len(files)} definitions are valid")
    if failed:
        raise click.exceptions.Exit(1)
