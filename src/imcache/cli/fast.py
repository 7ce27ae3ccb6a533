"""The `imcache` command's entry: a hit served without importing click or rich.

`imcache [--base-dir D] [--interfaces F ...] [--color C] run NAME [inputs] [--get X | --json]`
is looked up here when every word is certain (run's words split by run_words, the grammar the
click command reads too) and every input's digest is in the memo. On a hit it says and prints
what the click command would, byte for byte. Anything else (help, completion, another
command or option, a warning, an error, a miss, a file to hash) goes to the click app in
cli/main.py before anything changed, which then does the whole thing as ever.
"""

from __future__ import annotations

import os
import sys

from imcache.cli import lines
from imcache.cli.run_words import split_run_words

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import BinaryIO, TypeVar

    from imcache.core.plan import Plan
    from imcache.core.run import RunResult

GROUP_VALUES = ("--base-dir", "--interfaces", "--color")  # the group's options with a value
FOLDER_VALUES = ("--base-dir", "--interfaces")  # click.Path(file_okay=False)
COLORS = ("auto", "always", "never")
COMPLETE_VAR = "_IMCACHE_COMPLETE"  # a shell asking for completions: click's business
GroupOptions = tuple[dict[str, list[str]], list[str]]
if TYPE_CHECKING:
    T = TypeVar("T")


def main() -> None:
    """The console script: a hit or a Tab here, everything else by the click app."""
    if COMPLETE_VAR in os.environ:  # a shell asking: cli/fast_complete.py, or else click
        from imcache.cli.fast_complete import serve_completion

        code = serve_completion(os.environ)
    else:
        code = serve_hit(sys.argv[1:])
    if code is None:
        from imcache.cli.main import main as full

        _CONSOLE[:] = [True]
        try:
            full()
        except SystemExit as done:
            if _KEPT and isinstance(done.code, int):
                _exit_unfreed(done.code)
            raise
    sys.exit(code)


_KEPT: list[object] = []  # what a command hands to the exit (`keep_until_exit`)
_CONSOLE = [False]  # the console script runs the click app: its exit is `_exit_unfreed`'s


def keep_until_exit(value: T) -> T:
    """`value`, held until the process ends, which then ends without freeing it: a command
    over 100,000 entries spent a tenth of a second freeing them one by one at its end. Only
    the console script ends so (a command run in-process, by a test, keeps its last value)."""
    _KEPT[:] = [value]
    return value


def ends_unfreed() -> bool:
    """Whether this process ends without freeing what a command kept: the console script's,
    once a command kept its result (a test's process, running commands in turn, does not)."""
    return _CONSOLE[0] and bool(_KEPT)


def _exit_unfreed(code: int) -> None:
    """End now, once what was said is out (else the usual exit, which says why not)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def serve_hit(argv: Sequence[str]) -> int | None:
    """The exit code of a hit served here, or None: the click app must take `argv`."""
    if COMPLETE_VAR in os.environ or sys.stdout is None:
        return None  # stdout closed (`>&-`): click's echo writes nothing, and so it stays
    group = group_options(argv)
    if group is None or group[1][:1] != ["run"]:
        return None
    given, rest = group
    split = split_run_words(rest[1:])
    if split is None or split.name is None or split.exports or split.depends:
        return None
    if split.flags - {"as_json"}:
        return None  # help, --force, --dry-run: the full command
    as_json = "as_json" in split.flags
    if as_json and split.get_name is not None:
        return None  # an error, said by the full command
    try:
        result = _find_hit(given, split.name, list(split.words), split.get_name)
    except KeyboardInterrupt:
        lines.say("interrupted")
        return 130
    except Exception:
        return None
    if result is None:
        return None
    return _print_hit(split.name, result, as_json, split.get_name)


def group_options(argv: Sequence[str]) -> GroupOptions | None:
    """The group's options before the command, as click reads them, or None if unsure."""
    given: dict[str, list[str]] = {option: [] for option in GROUP_VALUES}
    index = 0
    while index < len(argv):
        word = argv[index]
        if word[:1] != "-" or len(word) == 1:
            return given, list(argv[index:])
        index += 1
        option, has_value, value = word.partition("=")
        if option not in GROUP_VALUES:
            return None  # --help, --version, "--", an unknown option
        if not has_value:
            if index == len(argv):
                return None
            value = argv[index]
            index += 1
        if option in FOLDER_VALUES and not _folder_or_nothing(value):
            return None  # click.Path refuses it, in its words
        if option == "--color" and value not in COLORS:
            return None
        given[option].append(value)
    return None  # no command


def _find_hit(
    given: dict[str, list[str]], name: str, words: list[str], get_name: str | None
) -> RunResult | None:
    from imcache.core.config import load_config
    from imcache.core.plan import RunRequest
    from imcache.core.run import hit_only

    flags = {"base_dir": _last(given["--base-dir"]), "color": _last(given["--color"])}
    cwd = os.getcwd()
    config = load_config(flags, os.environ, cwd)
    if config.warnings():
        return None  # said by the group, in the full command
    lines.use_color(config.color.value)
    request = RunRequest(
        interface=name,
        words=words,
        base_dir=config.base_dir.value,
        cwd=cwd,
        env=config.core_env(os.environ),
        catalogues=list(given["--interfaces"]),
        wanted_output=get_name,
        memo_only=True,  # a file to hash: the full command, with its progress bar
    )
    # A run that produced no `--get` output is an error: the full command says it.
    return hit_only(request, _Reporter(), lambda hit: get_name in (None, *hit.outputs, *hit.values))


def _print_hit(name: str, result: RunResult, as_json: bool, get_name: str | None) -> int:
    """The hit is taken (its last use marked): from here on, report as the click app does."""
    from imcache.cli.run_result import hit_message, result_lines

    try:
        lines.say(hit_message(name, result), "hit")
        for line in result_lines(result, as_json, get_name, {}):
            lines.echo_line(line)
    except (Exception, KeyboardInterrupt) as error:
        from imcache.cli.main import failure_code

        return failure_code(error)
    return 0


def _folder_or_nothing(path: str) -> bool:
    """What click.Path(file_okay=False) takes without a word: no such path, or a readable
    folder (anything else, a handover, whatever click makes of it)."""
    if not os.path.lexists(path):
        return True
    return os.path.isdir(path) and os.access(path, os.R_OK)


def _last(values: list[str]) -> str | None:
    return values[-1] if values else None


class _Reporter:
    """What a hit may have to say: that it waits for another process's lock."""

    echo: BinaryIO | None = None

    def waiting(self, plan: Plan) -> None:
        from imcache.cli.run_result import waiting_message

        lines.say(waiting_message(plan))

    def running(self, plan: Plan) -> None:
        raise AssertionError("a hit runs nothing")

    def warning(self, message: str) -> None:
        lines.say(f"warning: {message}")
