"""Shell completion without click: `imcache [group options] run [NAME] [words] <Tab>`.

A shell asks through `_IMCACHE_COMPLETE` (the scripts of `imcache completion SHELL`). Where the
word being completed is an interface's option (`--in<Tab>`), its value (a choice, a file) or
an interface's name (`run fsl.M<Tab>`), the answer is written here, byte for byte what click's
shell_completion writes for bash, zsh and fish; the words are placed by fast.group_options and
run_words (the grammar the click command reads). Anything else (a script, another command, a
group option, a run option's value, a word not placed with certainty, an unknown interface, any
error) is handed over to the click app before anything is written. What the completions are
(names, inputs, choices) is said once, here: cli/completion.py serves click the same lists.
"""

from __future__ import annotations

import os
import sys

from imcache.cli.fast import COMPLETE_VAR, group_options
from imcache.cli.run_words import REPEATED, VALUE, RunWords, split_run_words

TYPE_CHECKING = False  # typing (and its re, collections.abc) is no cost a Tab must pay
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from imcache.core.interfaces.model import InputSpec, Interface

Item = tuple[str, str, str | None]  # click's CompletionItem: value, type, help

# `run`'s options as the click command declares them, in its order: (parameter, option, help,
# repeatable). Their help is what zsh and fish show beside them (a test holds the two together).
RUN_OPTIONS = (
    ("as_json", "--json", "Print one JSON object with the outputs.", False),
    ("get_name", "--get", "Print only this output's path.", False),
    ("force", "--force", "Run again even when a cached result exists.", False),
    (
        "depends",
        "--depends",
        "A file the tool reads by itself: enters the key, not argv; repeatable.",
        True,
    ),
    ("exports", "--export", "Also place OUTPUT at PATH (hard link, else copy); repeatable.", True),
    ("symlink", "--symlink", "Export as symbolic links to the cache entry.", False),
    ("overwrite", "--overwrite", "Let --export replace a different existing file.", False),
    ("show_help", "--help", "Show this help, or NAME's inputs.", False),
    ("dry_run", "--dry-run", "Show key, argv and hit or miss; run nothing.", False),
)
SHELL_SPACE = " \t\r\n"  # what shlex splits on (posix, whitespace_split)
QUOTING = "'\"\\"  # a word holding one of these is split by shlex itself


def serve_completion(env: Mapping[str, str]) -> int | None:
    """The exit code once the shell's completions are written, or None: the click app answers
    (nothing was written)."""
    try:
        answer = _answer(env)
    except KeyboardInterrupt:
        from imcache.cli import lines

        lines.say("interrupted")
        return 130
    except Exception:
        return None
    if answer is None or sys.stdout is None:  # stdout closed: click's echo writes nothing
        return None
    try:
        sys.stdout.buffer.write(answer)
        sys.stdout.buffer.flush()
    except (Exception, KeyboardInterrupt) as error:
        from imcache.cli.main import failure_code

        return failure_code(error)
    return 0


def _answer(env: Mapping[str, str]) -> bytes | None:
    """What click's `shell_complete` would write (`echo(comp.complete().encode())`), or None."""
    shell, _, instruction = env.get(COMPLETE_VAR, "").partition("_")
    if instruction != "complete" or shell not in FORMATS:
        return None  # a script to source, another shell, nothing asked: click's business
    args, incomplete = completion_args(shell, env)
    items = place(args, incomplete)
    if items is None:
        return None
    return ("\n".join(FORMATS[shell](item) for item in items) + "\n").encode()


def completion_args(shell: str, env: Mapping[str, str]) -> tuple[list[str], str]:
    """The complete words after `imcache` and the word being completed, as click's
    `get_completion_args` reads COMP_WORDS and COMP_CWORD for this shell."""
    words = split_arg_string(env["COMP_WORDS"])
    if shell == "fish":  # the line up to the cursor, and the word at it
        incomplete = env["COMP_CWORD"]
        if incomplete:
            incomplete = split_arg_string(incomplete)[0]
        args = words[1:]
        if incomplete and args and args[-1] == incomplete:
            args.pop()
        return args, incomplete
    cword = int(env["COMP_CWORD"])
    try:
        incomplete = words[cword]
    except IndexError:
        incomplete = ""
    return words[1:cword], incomplete


def split_arg_string(string: str) -> list[str]:
    """click's `split_arg_string`: shlex's words, an unfinished quote or escape taken as is.
    Words without quotes or escapes are split here (shlex imports `re`, which a Tab need not)."""
    if not any(char in QUOTING for char in string):
        for space in SHELL_SPACE:
            string = string.replace(space, " ")
        return [word for word in string.split(" ") if word]
    import shlex

    lex = shlex.shlex(string, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    out: list[str] = []
    try:
        out.extend(lex)
    except ValueError:
        out.append(lex.token)
    return out


def place(args: list[str], incomplete: str) -> list[Item] | None:
    """The completions of `incomplete` after `args` where this module is sure where it stands
    (within `run`, as click's `_resolve_incomplete` would find it), else None."""
    if incomplete == "=" or (incomplete[:1] == "-" and "=" in incomplete) or "--" in args:
        return None  # click splits or re-reads those words: its own way
    group = group_options(args)
    if group is None or group[1][:1] != ["run"] or args[-1] in {*VALUE, *REPEATED}:
        return None  # not within run, or a run option's value (click completes that)
    split = split_run_words(group[1][1:])
    if split is None:
        return None
    from imcache.core.interfaces.registry import resolve, search_path

    folders = search_path(list(group[0]["--interfaces"]), os.environ)
    if split.name is None:
        own = [] if incomplete[:1] == "-" else plain(interface_names(folders, incomplete))
    else:  # an interface that does not resolve is handed over (click completes it to nothing)
        own = input_completions(resolve(split.name, folders), list(split.words), incomplete)
    return [*own, *run_options(split, incomplete)] if incomplete[:1] == "-" else own


def interface_names(folders: Sequence[str], incomplete: str) -> list[str]:
    """Every interface name along the search path and nipype's, that starts so."""
    from imcache.core.interfaces.nipype_source import list_nipype
    from imcache.core.interfaces.registry import list_all

    names = sorted({found.name for found in list_all(folders)} | set(list_nipype()[1]))
    return [name for name in names if name.startswith(incomplete)]


def input_completions(interface: Interface, words: list[str], incomplete: str) -> list[Item]:
    """After `imcache run NAME words`: the interface's options, or the value being given."""
    from imcache.core.interfaces.arguments import option_table

    table = option_table(interface)
    if incomplete.startswith("-"):
        return plain(
            o for o in sorted({spec.option for spec in table.values()}) if o.startswith(incomplete)
        )
    spec = current_input(table, words)
    if spec is None:
        return []
    if spec.choices:
        return plain(str(c) for c in spec.choices if str(c).startswith(incomplete))
    if spec.type == "File":
        return [(incomplete, "file", None)]
    return []


def current_input(table: Mapping[str, InputSpec], words: list[str]) -> InputSpec | None:
    """The input whose value is being typed: the last option, if it still takes values."""
    current = None
    given = 0
    for word in words:
        if word.startswith("--"):
            current, given = table.get(word.partition("=")[0]), 0
        else:
            given += 1
    if current is None or current.type == "Flag" or (given and not current.is_list):
        return None
    return current


def run_options(split: RunWords, incomplete: str) -> list[Item]:
    """`run`'s own options that start with `incomplete` (a word that starts with "-"), as
    click's `Command.shell_complete` offers them: none given already unless repeatable, each
    with its help."""
    return [
        (option, "plain", help)
        for name, option, help, repeatable in RUN_OPTIONS
        if (repeatable or name not in split.order) and option.startswith(incomplete)
    ]


def plain(values: Iterable[str]) -> list[Item]:
    return [(value, "plain", None) for value in values]


def _bash(item: Item) -> str:
    return f"{item[1]},{item[0]}"


def _zsh(item: Item) -> str:
    value, kind, help = item
    help = help or "_"
    if help != "_":  # zsh's script reads an item with help by `_describe`: colons escaped
        value = value.replace(":", "\\:")
    return f"{kind}\n{value}\n{help}"


def _fish(item: Item) -> str:
    value, kind, help = item
    if help:  # one line per item, the help after a tab
        help = help.replace("\n", "\\n").replace("\t", " ")
        return f"{kind},{value}\t{help}"
    return f"{kind},{value}"


FORMATS: dict[str, Callable[[Item], str]] = {"bash": _bash, "zsh": _zsh, "fish": _fish}
