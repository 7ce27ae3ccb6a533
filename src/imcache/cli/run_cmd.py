"""`imcache run NAME [inputs] [--json | --get OUTPUT] [--force] [--dry-run]`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, BinaryIO, cast

import click
from click.core import iter_params_for_processing

from imcache.cli.common import EXIT_CODES_HELP, Settings, ToolEcho, echo_line, on_terminal, say
from imcache.cli.run_result import hit_message, result_lines, waiting_message
from imcache.cli.run_words import FLAGS, REPEATED, VALUE, split_run_words
from imcache.core.errors import UsageError
from imcache.core.export import Placed, export_outputs, parse_exports
from imcache.core.plan import Plan, RunRequest, complete_plan, plan_run
from imcache.core.run import RunResult, look_up
from imcache.core.run import run as run_interface


def _complete(what: str, ctx: click.Context, param: click.Parameter, incomplete: str) -> Any:
    """Shell completion, imported only when a shell asks (never on a run)."""
    from imcache.cli import completion

    if what == "interface":
        return completion.complete_interface(ctx, param, incomplete)
    return completion.complete_words(ctx, param, incomplete)


class RunCommand(click.Command):
    """`run`, whose options after NAME include the interface's own inputs (for completion)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """The words split by run_words (the grammar the hit without click reads too); what it
        is not sure of, and completion, go to click's parser, which reports it as ever."""
        options = [param for param in self.params if isinstance(param, click.Option)]
        declared = {opt for option in options for opt in option.opts}
        ours = declared == {*FLAGS, *VALUE, *REPEATED}  # `run` (explain's options differ)
        split = split_run_words(args) if ours and not ctx.resilient_parsing else None
        if split is None:
            return super().parse_args(ctx, args)
        given = split.params()
        by_name = {param.name: param for param in self.get_params(ctx)}
        for param in iter_params_for_processing(
            [by_name[name] for name in split.order], self.get_params(ctx)
        ):
            # Only what was given counts as given (the rest takes its default, as in click).
            opts = {param.name: given[param.name]} if param.name in split.order else {}
            param.handle_parse_result(ctx, opts, [])
        ctx.params.update(given)
        ctx.args = []
        return []

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        own = _complete("words", ctx, self.params[1], incomplete) if incomplete[:1] == "-" else []
        return [*own, *super().shell_complete(ctx, incomplete)]


class StderrReporter:
    """Tells people what happens, on stderr; the tool's own output streams there too (and, for
    a person at a terminal, a spinner while the tool is silent)."""

    def __init__(self, progress: Any = None, spinner: bool = False) -> None:
        self.progress = progress  # the hashing bar: gone before anything else is said
        raw = getattr(sys.stderr, "buffer", None)
        self.echo: BinaryIO | None = cast(BinaryIO, ToolEcho(raw)) if raw is not None else None
        self.spinner: Any = None
        if spinner and raw is not None and self.echo is not None:
            from imcache.cli.progress import ToolSpinner

            self.spinner = ToolSpinner(self.echo, raw)
            self.echo = cast(BinaryIO, self.spinner)

    def waiting(self, plan: Plan) -> None:
        self.end_progress()
        say(waiting_message(plan))

    def running(self, plan: Plan) -> None:
        self.end_progress()
        say(f"{plan.interface.name}: running {plan.tool.name} in {plan.entry}", "ran")
        if self.spinner is not None:
            self.spinner.start(f"{plan.interface.name}: running {plan.tool.name}")

    def warning(self, message: str) -> None:
        self.end_progress()
        say(f"warning: {message}")

    def end_progress(self) -> None:
        """The hashing bar and the spinner go before anything else is said."""
        if self.progress is not None:
            self.progress.close()
        if self.spinner is not None:
            self.spinner.stop()


RUN_HELP = f"""Run interface NAME with its inputs, or print the outputs of an identical earlier run.

Inputs are the interface's own options: see 'imcache run NAME --help'. A list input takes
every value up to the next option. stdout carries only results.

{EXIT_CODES_HELP}"""


AnyCallable = Callable[..., Any]


def run_arguments(json_help: str) -> Callable[[AnyCallable], AnyCallable]:
    """NAME, the interface's inputs and run's options: one grammar for `run` and `explain`."""

    def decorate(command: AnyCallable) -> AnyCallable:
        options = [
            click.argument(
                "name",
                required=False,
                shell_complete=lambda c, p, i: _complete("interface", c, p, i),
            ),
            click.argument(
                "words",
                nargs=-1,
                type=click.UNPROCESSED,
                shell_complete=lambda c, p, i: _complete("words", c, p, i),
            ),
            click.option("--json", "as_json", is_flag=True, help=json_help),
            click.option(
                "--get", "get_name", metavar="OUTPUT", help="Print only this output's path."
            ),
            click.option(
                "--force", is_flag=True, help="Run again even when a cached result exists."
            ),
            click.option(
                "--depends",
                "depends",
                multiple=True,
                metavar="PATH",
                help="A file the tool reads by itself: enters the key, not argv; repeatable.",
            ),
            click.option(
                "--export",
                "exports",
                multiple=True,
                metavar="OUTPUT=PATH",
                help="Also place OUTPUT at PATH (hard link, else copy); repeatable.",
            ),
            click.option(
                "--symlink", is_flag=True, help="Export as symbolic links to the cache entry."
            ),
            click.option(
                "--overwrite", is_flag=True, help="Let --export replace a different existing file."
            ),
            click.option(
                "--help", "show_help", is_flag=True, help="Show this help, or NAME's inputs."
            ),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def build_request(
    settings: Settings,
    name: str,
    words: tuple[str, ...],
    get_name: str | None,
    exports: list[tuple[str, str]],
    depends: tuple[str, ...],
    force: bool = False,
    progress: Any = None,
    read_only: bool = False,
) -> RunRequest:
    """What `run` and `explain` plan from the same words."""
    return RunRequest(
        interface=name,
        words=list(words),
        base_dir=settings.base_dir,
        cwd=os.getcwd(),
        env=dict(settings.env),
        catalogues=settings.catalogues,
        force=force,
        wanted_output=get_name,
        exported=tuple(name for name, _ in exports),
        depends=depends,
        progress=progress,
        read_only=read_only,
    )


def show_interface_help(ctx: click.Context, settings: Settings, name: str) -> None:
    from imcache.cli.interface_help import interface_help
    from imcache.core.interfaces.registry import resolve, search_path

    interface = resolve(name, search_path(settings.catalogues, settings.env))
    click.echo(interface_help(interface, ctx.get_help(), settings.env, ctx.info_name or "run"))
    click.echo("\n" + click.wrap_text(EXIT_CODES_HELP, 78))


@click.command(
    "run",
    cls=RunCommand,
    help=RUN_HELP,
    add_help_option=False,
    context_settings={"ignore_unknown_options": True},
)
@run_arguments("Print one JSON object with the outputs.")
@click.option("--dry-run", is_flag=True, help="Show key, argv and hit or miss; run nothing.")
@click.pass_context
def run(
    ctx: click.Context,
    name: str | None,
    words: tuple[str, ...],
    as_json: bool,
    get_name: str | None,
    force: bool,
    dry_run: bool,
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
            "missing interface NAME", "usage: imcache run NAME [inputs]; see 'imcache interfaces'"
        )
    if as_json and get_name:
        raise UsageError("--json and --get cannot be used together", "choose one")
    wanted_exports = parse_exports(exports)
    request = build_request(
        settings, name, words, get_name, wanted_exports, depends, force, _progress_bar()
    )
    if show_help:
        show_interface_help(ctx, settings, name)
        return
    if dry_run:
        _dry_run(complete_plan(plan_run(request)), as_json, force)
        return
    reporter = StderrReporter(request.progress, spinner=_redraw_wanted())
    try:
        result = run_interface(request, reporter)
    finally:
        reporter.end_progress()
    _check_produced(result, get_name)
    if result.remote_bytes is not None:
        say(
            f"{name}: fetched from remote ({result.remote_bytes} bytes, key {result.plan.key[:12]})"
        )
    if result.cached:
        say(hit_message(name, result), "hit")
    else:
        say(f"{name}: done in {result.seconds or 0:.2f} s, cached as {result.plan.key[:12]}", "ran")
    placed = _export(result, wanted_exports, symlink, overwrite)
    _print_result(result, as_json, get_name, placed)


def _export(
    result: RunResult, exports: list[tuple[str, str]], symlink: bool, overwrite: bool
) -> list[Placed]:
    if not exports:
        return []
    placed = export_outputs(
        result.outputs,
        exports,
        os.getcwd(),
        "symlink" if symlink else "link",
        overwrite,
        entry=result.plan.entry,  # an output linking out of its entry is never exported
        inputs=result.plan.seen,  # nor is an input of this run ever replaced
    )
    for item in placed:
        say(f"{item.output}: {item.how} at {item.target}")
    return placed


def _redraw_wanted() -> bool:
    """A bar or a spinner redraws its line: for a person watching stderr on a terminal, and not
    where other processes write to the same terminal at once (make -j), whose lines it would
    break. Never into a pipe or a log, whatever --color says."""
    if not on_terminal(sys.stderr):
        return False
    flags = os.environ.get("MAKEFLAGS", "").split()
    parallel = [f for f in flags if f.startswith("--jobserver") or f.startswith("-j")]
    return parallel in ([], ["-j1"])


def _progress_bar() -> Any:
    """A hashing progress bar where a person watches stderr (imported only then)."""
    if not _redraw_wanted():
        return None
    from imcache.cli.progress import HashProgress

    return HashProgress(force=True)


def _check_produced(result: RunResult, get_name: str | None) -> None:
    """A declared but optional output may be absent from this run's results."""
    if get_name is not None and get_name not in {**result.outputs, **result.values}:
        names = ", ".join(sorted({**result.outputs, **result.values})) or "none"
        raise UsageError(
            f"{result.plan.interface.name}: this run produced no {get_name!r}",
            f"it produced: {names}",
        )


def _print_result(
    result: RunResult, as_json: bool, get_name: str | None, placed: list[Placed]
) -> None:
    exported = {item.target: item.source for item in placed}
    for line in result_lines(result, as_json, get_name, exported):
        echo_line(line)


def _dry_run(plan: Plan, as_json: bool, force: bool = False) -> None:
    hit = look_up(plan)
    report = {
        "interface": plan.interface.name,
        "key": plan.key,
        "cached": hit is not None,
        "would_run": force or hit is None,
        "work_dir": plan.entry,
        "argv": plan.argv,
        "tool": plan.tool.path,
        "outputs": {out.spec.label: os.path.join(plan.entry, out.path) for out in plan.outputs},
        "key_fields": plan.key_lines,
        "dry_run": True,
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    echo_line(f"interface: {plan.interface.name}")
    echo_line(f"key:       {plan.key}")
    if force:
        echo_line(f"would:     run (--force; {'cached' if hit else 'not cached'} now)")
    else:
        echo_line(f"would:     {'hit (nothing to run)' if hit else 'miss (would run)'}")
    echo_line(f"work dir:  {plan.entry}")
    echo_line(f"argv:      {_shell_line(plan.argv)}")
    if plan.tool.path is None:
        echo_line(f"tool:      {plan.tool.name} is not on PATH: a real run would fail")
    echo_line("key fields:")
    for line in plan.key_lines:
        echo_line(f"  {line}")


def _shell_line(argv: list[str]) -> str:
    import shlex

    return " ".join(shlex.quote(word) for word in argv)
