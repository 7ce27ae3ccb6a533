"""`imcache config`: the effective settings and their sources; `imcache completion SHELL`."""

from __future__ import annotations

import json
from typing import Any

import click

from imcache.cli.common import Settings, echo_line
from imcache.core.config import Config


def _shown(value: object) -> str:
    if isinstance(value, list):
        return ":".join(value) or "(none)"
    return "(unset)" if value is None else str(value)


@click.command("config")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object: setting -> value, source; files: each settings file found.",
)
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """Show the effective settings and where each came from.

    Highest first: a flag (--base-dir, --color), an environment variable (IMCACHE_BASE_DIR,
    IMCACHE_PATH, IMCACHE_COLOR or NO_COLOR, FSLOUTPUTTYPE), the nearest imcache.toml in this
    folder or above, $XDG_CONFIG_HOME/imcache/config.toml, the default. A TOML file may set
    base-dir, interfaces (a list of folders: IMCACHE_PATH), color and fsl-output-type. A file is
    used only if it is yours or root's and writable by nobody else; each file found is listed,
    used or ignored (and why).
    """
    settings: Settings = ctx.obj
    effective: Config = settings.config
    files = [
        {"path": f.path, "used": f.ignored is None, "ignored": f.ignored} for f in effective.files
    ]
    if as_json:
        report: dict[str, Any] = {
            s.name: {"value": s.value, "source": s.source} for s in effective.all()
        }
        report["interfaces"] = {"value": list(settings.catalogues), "source": "--interfaces"}
        report["files"] = files
        click.echo(json.dumps(report, indent=2))
        return
    rows = [(s.name, _shown(s.value), s.source) for s in effective.all()]
    if settings.catalogues:
        rows.append(("interfaces", _shown(list(settings.catalogues)), "--interfaces"))
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        echo_line(f"{name.ljust(width)}  {value}  ({source})")
    for found in effective.files:
        status = "used" if found.ignored is None else f"ignored: {found.ignored}"
        echo_line(f"{'file'.ljust(width)}  {found.path}  ({status})")


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL.

    \b
    bash: eval "$(imcache completion bash)"
          (or save it as ~/.local/share/bash-completion/completions/imcache)
    zsh:  imcache completion zsh > "${fpath[1]}/_imcache"
    fish: imcache completion fish > ~/.config/fish/completions/imcache.fish
    """
    from imcache.cli.completion import completion_script
    from imcache.cli.main import cli

    click.echo(completion_script(cli, shell), nl=False)
