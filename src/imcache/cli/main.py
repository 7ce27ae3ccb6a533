"""The `imcache` command group and the one handler that maps every outcome to an exit code.

Exit codes: 0 ok, 1 user error, 2 bad usage, 3 internal bug (a log is written), 130 on Ctrl-C,
and the wrapped program's own code when it fails.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from imcache import __version__
from imcache.cli.common import EXIT_CODES_HELP, Settings, say, use_color
from imcache.core.errors import ImcacheError

# Each command's module is imported only when that command is used: a hit (`run`) must not pay
# for the imports of `clear` or `interfaces` (start-up time is most of a hit's cost).
COMMANDS = {
    "run": "imcache.cli.run_cmd:run",
    "init": "imcache.cli.init_cmd:init",
    "interfaces": "imcache.cli.interfaces_cmd:interfaces",
    "validate": "imcache.cli.interfaces_cmd:validate",
    "session": "imcache.cli.session_cmd:session",
    "clear": "imcache.cli.clear_cmd:clear_cmd",
    "ls": "imcache.cli.ls_cmd:ls",
    "show": "imcache.cli.show_cmd:show",
    "stats": "imcache.cli.stats_cmd:stats_cmd",
    "verify": "imcache.cli.verify_cmd:verify_cmd",
    "explain": "imcache.cli.explain_cmd:explain_cmd",
    "config": "imcache.cli.config_cmd:config",
    "completion": "imcache.cli.config_cmd:completion",
    "remote": "imcache.cli.remote_cmd:remote",
    "push": "imcache.cli.remote_cmd:push",
}


class ImcacheGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(command, click.Command)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        sys.exit(self._exit_code(args, prog_name, complete_var, extra))

    def _exit_code(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        extra: dict[str, Any],
    ) -> int:
        use_color("auto")  # until the settings are read (one process may run several commands)
        try:
            result = super().main(args, prog_name or "imcache", complete_var, False, **extra)
            return result if isinstance(result, int) else 0
        except (Exception, KeyboardInterrupt) as error:
            return failure_code(error)


def failure_code(error: BaseException) -> int:
    """Say what went wrong, once, and the exit code that goes with it (also for fast.py)."""
    if isinstance(error, ImcacheError):
        say(f"error: {error}")
        return error.exit_code
    if isinstance(error, click.UsageError):
        command = error.ctx.command_path if error.ctx else "imcache"
        say(f"error: {error.format_message()} (see '{command} --help')")
        return 2
    if isinstance(error, click.ClickException):
        say(f"error: {error.format_message()}")
        return error.exit_code
    if isinstance(error, (click.Abort, KeyboardInterrupt)):
        say("interrupted")
        return 130
    unwritable = _unwritable_stdout(error)
    if unwritable:
        say(f"error: cannot write the results: standard output {unwritable}")
        return 1
    # The last net: a bug, reported once with a pointer to its log.
    log = _write_crash_log()
    say(
        f"internal error ({type(error).__name__}); "
        f"this is a bug in imcache, "
        f"please report it with the log {log}"
    )
    return 3


def _unwritable_stdout(error: BaseException) -> str:
    """Why standard output took no results (closed: `>&-`; full: `>/dev/full`), or "": a user's
    redirection, not a bug. Writes to standard output name no file; imcache's own file writes do,
    and are worded where they happen."""
    if sys.stdout is None:
        return "is closed (give it a file or a pipe)"
    import errno

    if isinstance(error, OSError) and error.filename is None:
        if error.errno == errno.ENOSPC:
            return "is full (No space left on device)"
        if error.errno in (errno.EBADF, errno.EIO):
            return f"failed ({os.strerror(error.errno)})"
    return ""


def _write_crash_log() -> str:
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    folder = os.path.join(state, "imcache")
    path = os.path.join(folder, f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            import traceback  # only for a crash: a hit must not pay for it

            handle.write(f"imcache {__version__}\nargv: {sys.argv!r}\n\n{traceback.format_exc()}")
    except OSError:
        return "(none: could not write one; rerun to see the problem)"
    return path


@click.group(
    cls=ImcacheGroup,
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--base-dir",
    type=click.Path(file_okay=False),
    help="Where the cache lives (as <DIR>/imcache_mem). [env: IMCACHE_BASE_DIR; default: .]",
)
@click.option(
    "--interfaces",
    "catalogues",
    multiple=True,
    type=click.Path(file_okay=False),
    help="A folder of interface definitions, searched before IMCACHE_PATH and the built-ins.",
)
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    help="Colours: auto (on a terminal), always (pipes and logs too), never; spinners, bars and "
    "tables only ever on a terminal. [env: IMCACHE_COLOR]",
)
@click.option(
    "--remote",
    metavar="URL",
    help="A shared remote cache behind the local one, s3://BUCKET[/PREFIX]: fetched on a miss, "
    "pushed to after a run. [env: IMCACHE_REMOTE; see docs/remote.md]",
)
@click.version_option(__version__, prog_name="imcache")
@click.pass_context
def cli(
    ctx: click.Context,
    base_dir: str | None,
    catalogues: tuple[str, ...],
    color: str | None,
    remote: str | None,
) -> None:
    """Run command-line tools from Boutiques definitions, and reuse identical earlier runs.

    Settings come from flags, then IMCACHE_* variables, then imcache.toml (in this folder or
    above) and ~/.config/imcache/config.toml: see 'imcache config'.
    """
    from imcache.core.config import load_config

    cwd = os.getcwd()
    flags = {"base_dir": base_dir, "color": color, "remote": remote}
    config = load_config(flags, os.environ, cwd)
    ctx.obj = Settings(
        base_dir=config.base_dir.value,
        catalogues=list(catalogues),
        env=config.core_env(os.environ),
        config=config,
    )
    use_color(config.color.value)  # for every line said, errors after the command included
    for warning in config.warnings():  # a settings file another user could have written
        say(f"warning: {warning}")


def main() -> None:
    cli.main()
