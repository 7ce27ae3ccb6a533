"""Man pages from the click app: `python -m imcache.cli.manpage [DIR]` writes them (default man/).

One page for `imcache` and one per command (`imcache-run.1`, ...; a group such as `session` gets
one page that covers its subcommands). Names, synopses, descriptions and options come from the
click commands; the sections click knows nothing of (ENVIRONMENT, FILES, EXAMPLES, SEE ALSO) are
written here. The date is a constant, not today's, so that regenerating gives the same bytes.

Nothing on a command's path imports this module: a run must not pay for it.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from collections.abc import Sequence

import click

from imcache import __version__
from imcache.cli.common import EXIT_CODES_HELP

# Fixed, for reproducible pages: bump it when the pages change in substance.
MANUAL_DATE = "2026-11-25"
MANUAL_TITLE = "imcache manual"
OPTION_WORD = re.compile(r"(?<![\w-])(--?[A-Za-z][\w-]*)")
METAVAR_WORD = re.compile(r"([A-Z][A-Z_]*[A-Z]|[A-Z])")

MRCAT = "imcache run mrtrix3.MRCat --axis 3 --in-files a.nii b.nii"
Examples = Sequence[tuple[str, str]]  # (what it does, the command lines)

ENVIRONMENT = (
    (
        "IMCACHE_BASE_DIR",
        "The folder that holds the cache, as DIR/imcache_mem. --base-dir wins over it; it wins "
        "over base-dir in a configuration file. Default: the working folder.",
    ),
    (
        "IMCACHE_PATH",
        "Colon-separated folders of interface definitions, searched in order after the "
        "--interfaces folders and before the built-in catalogue; the first match wins. The "
        "interfaces list of a configuration file stands for it.",
    ),
    ("IMCACHE_COLOR", "auto, always or never: colours and progress bars, as --color."),
    (
        "NO_COLOR",
        "When set and not empty: no colours and no progress bar, as IMCACHE_COLOR=never "
        "(an IMCACHE_COLOR or --color given as well decides the colours).",
    ),
    (
        "FSLOUTPUTTYPE",
        "FSL's output type (NIFTI, NIFTI_GZ, NIFTI_PAIR, NIFTI_PAIR_GZ) for the FSL interfaces: "
        "it is set for the tool and is part of the key. The fsl-output-type of a configuration "
        "file stands for it.",
    ),
    ("XDG_CONFIG_HOME", "Where the user's configuration file is (default ~/.config)."),
    ("XDG_STATE_HOME", "Where crash logs go (default ~/.local/state)."),
)

FILES = (
    (
        "imcache.toml",
        "The project's settings: the nearest one in the working folder or above it. Keys: "
        "base-dir, interfaces (a list of folders), color, fsl-output-type; paths are relative "
        "to the file's folder. Flags and environment variables win over it.",
    ),
    (
        "$XDG_CONFIG_HOME/imcache/config.toml",
        "The user's settings, with the same keys; the project's file wins over it.",
    ),
    (
        "<base>/imcache_mem",
        "The cache: one folder per interface, one entry per key in it "
        "(<base>/imcache_mem/INTERFACE/KEY), with its record, the tool's logs and outputs; "
        "events.log, read by imcache stats.",
    ),
    (
        "$XDG_STATE_HOME/imcache/crash-*.log",
        "What an internal error (exit status 3) left for its bug report.",
    ),
)

# Taken from README.md and docs/: what a person would type.
EXAMPLES: dict[str, Examples] = {
    "": (
        (
            "Run FSL's fslmerge, or print the outputs of an identical earlier run:",
            "imcache run fsl.Merge --dimension t --in-files a.nii.gz b.nii.gz",
        ),
        (
            "Use one output's path in a script:",
            f"merged=$({MRCAT} \\\n    --get out_file)",
        ),
        (
            "Keep the disk in check:",
            "imcache session start\nimcache clear --previous\n"
            "imcache clear --older-than 30d --max-size 20G --dry-run",
        ),
    ),
    "run": (
        (
            "Run, or print the cached outputs (the second time, a hit):",
            f"{MRCAT} \\\n    --out-file merged.nii",
        ),
        ("The interface's inputs, outputs and their docs:", "imcache run mrtrix3.MRCat --help"),
        (
            "One output's path, for a script:",
            f"merged=$({MRCAT} \\\n    --get out_file)",
        ),
        (
            "The key, the argv, hit or miss; runs nothing:",
            f"{MRCAT} --dry-run",
        ),
        (
            "Also place the output where make expects it:",
            f"{MRCAT} \\\n    --export out_file=merged.mif",
        ),
    ),
    "clear": (
        (
            "Drop what the latest session did not use:",
            "imcache session start\n...\nimcache clear --previous",
        ),
        ("Drop what was not used since that day:", "imcache clear --since 2024-05-01"),
        (
            "Show what age and size bounds would remove:",
            "imcache clear --older-than 30d --max-size 20G --dry-run",
        ),
    ),
    "session": (
        (
            "At the start and the end of a pipeline run:",
            "imcache session start\n...\nimcache clear --previous",
        ),
    ),
    "ls": (("Entries of one interface:", "imcache ls mrtrix3.MRCat"),),
    "show": (("One entry, by a prefix of its key:", "imcache show 67570da1"),),
    "stats": (("Entries, bytes, hits and misses:", "imcache stats"),),
    "verify": (("Check every entry, and remove the damaged ones:", "imcache verify --fix"),),
    "init": (("A cache that the group lab shares:", "imcache init --shared --group lab"),),
    "interfaces": (
        ("What can run, and from which catalogue:", "imcache interfaces"),
        ("The FSL ones:", "imcache interfaces 'fsl.*'"),
    ),
    "validate": (("Check definitions of one's own:", "imcache validate mine/fsl/*.json"),),
    "config": (("The effective settings and their sources:", "imcache config"),),
    "completion": (("Completion in the running bash:", 'eval "$(imcache completion bash)"'),),
}

# Where a page's own text is thin: a paragraph after click's help.
MORE: dict[str, str] = {
    "session": (
        "A session is the start of one pipeline run. clear --previous removes the entries not "
        "used since the latest session start: whatever the pipeline's last run did not touch."
    ),
    "clear": (
        "Policies combine: an entry goes if any time bound (--previous, --since, --older-than) "
        "selects it; then, with --max-size, the least recently used of the rest go until the "
        "cache fits. Sizes take k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024). "
        "An entry that another process is running or using is never removed."
    ),
    "run": (
        "The key is a hash of the interface's name and definition, the tool's identity, every "
        "input value (files by content, not by absolute path) and the environment variables "
        "the definition declares. A failed run exits with the tool's exit status and is never "
        "cached."
    ),
}

# The pages where the settings matter most get ENVIRONMENT and FILES as well as imcache(1).
SETTINGS_PAGES = ("", "run", "config")


def man_pages(group: click.Group) -> dict[str, str]:
    """Every page, as {file name: roff text}, from the `imcache` group."""
    ctx = click.Context(group, info_name="imcache", **group.context_settings)
    names = group.list_commands(ctx)
    pages = {"imcache.1": _root_page(group, ctx, names)}
    for name, command, sub in _children(group, ctx):
        pages[f"imcache-{name}.1"] = _command_page(command, sub, group, ctx)
    return pages


def _root_page(group: click.Group, ctx: click.Context, names: list[str]) -> str:
    out = _header("imcache", group)
    out += [".SH SYNOPSIS", ".B imcache", *_usage(group, ctx)]
    out += [".SH DESCRIPTION", *_paragraphs(group.help or "")]
    out += [".SH OPTIONS", *_options(group, ctx), ".SH COMMANDS"]
    for name in names:
        command = group.get_command(ctx, name)
        assert command is not None, name
        out += [".TP", f"\\fB{_esc(name)}\\fR", _prose(_short(command)), _see(f"imcache-{name}")]
    out += _settings_sections("")
    out += _exit_status() + _examples("")
    return _page(out, [f"imcache-{name}" for name in names])


def _command_page(
    command: click.Command, ctx: click.Context, group: click.Group, root: click.Context
) -> str:
    name = ctx.info_name or ""
    out = _header(f"imcache-{name}", command)
    out += [".SH SYNOPSIS", *_synopsis(command, ctx)]
    out += [".SH DESCRIPTION", *_paragraphs(command.help or "")]
    if name in MORE:
        out += [".PP", _prose(MORE[name])]
    out += [".SH OPTIONS", *_options(command, ctx)]
    if isinstance(command, click.Group):
        out += _subcommands(command, ctx)
    out += [".SH GLOBAL OPTIONS", ".PP", _global_note(group, root)]
    out += _settings_sections(name) + _exit_status() + _examples(name)
    return _page(out, ["imcache"])


def _header(title: str, command: click.Command) -> list[str]:
    summary = _short(command).rstrip(".")
    if summary[1:2].islower():  # a plain word, not an acronym: lower case, as man pages do
        summary = summary[0].lower() + summary[1:]
    return [
        '.\\" Generated by python -m imcache.cli.manpage from the click app: do not edit.',
        f'.TH {_arg(title.upper())} 1 "{MANUAL_DATE}" "imcache {__version__}" "{MANUAL_TITLE}"',
        ".nh",  # no hyphenation: a broken option or file name reads as another one
        ".ad l",
        ".SH NAME",
        f"{_esc(title)} \\- {_esc(summary)}",
    ]


def _short(command: click.Command) -> str:
    return command.get_short_help_str(limit=1000)


def _usage(command: click.Command, ctx: click.Context) -> list[str]:
    """click's usage pieces, metavariables in italics: `[\\fIOPTIONS\\fR] \\fINAME\\fR`."""
    pieces = " ".join(command.collect_usage_pieces(ctx))
    return [METAVAR_WORD.sub(r"\\fI\1\\fR", _esc(pieces))] if pieces else []


def _synopsis(command: click.Command, ctx: click.Context) -> list[str]:
    lead = [".B imcache", "[\\fIGLOBAL OPTIONS\\fR]"]
    if not isinstance(command, click.Group):
        return [*lead, f".B {_arg(ctx.info_name or '')}", *_usage(command, ctx)]
    lines: list[str] = []
    for sub_name, sub, sub_ctx in _children(command, ctx):
        words = f"{ctx.info_name} {sub_name}"
        lines += [".br"] if lines else []
        lines += [*lead, f".B {_arg(words)}", *_usage(sub, sub_ctx)]
    return lines


def _children(
    group: click.Group, ctx: click.Context
) -> list[tuple[str, click.Command, click.Context]]:
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        sub = click.Context(command, info_name=name, parent=ctx, **command.context_settings)
        found.append((name, command, sub))
    return found


def _subcommands(group: click.Group, ctx: click.Context) -> list[str]:
    out = [".SH COMMANDS"]
    for name, command, sub_ctx in _children(group, ctx):
        out += [f".SS {_arg(f'{ctx.info_name} {name}')}", *_paragraphs(command.help or "")]
        out += [".PP", "Options:", *_options(command, sub_ctx)]
    return out


def _options(command: click.Command, ctx: click.Context) -> list[str]:
    out: list[str] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if not isinstance(param, click.Option) or record is None:
            continue
        names = set(param.opts) | set(param.secondary_opts)
        out += [".TP", _option_tag(record[0], names), _prose(record[1] or "")]
    return out


def _option_tag(tag: str, names: set[str]) -> str:
    """`-q, --quiet` or `--since DATE`: names in bold, the metavariable in italics."""
    words = []
    for word in tag.split(" "):
        bare = word.rstrip(",")
        if bare in names:
            words.append(f"\\fB{_esc(bare)}\\fR" + _esc(word[len(bare) :]))
        elif word in ("/", ";"):
            words.append(word)
        else:
            words.append(f"\\fI{_esc(word)}\\fR")
    return " ".join(words)


def _global_note(group: click.Group, ctx: click.Context) -> str:
    names = [
        param.opts[-1]
        for param in group.get_params(ctx)
        if isinstance(param, click.Option) and param.expose_value
    ]
    return _prose(f"{', '.join(names)} go before the command name: see ") + _ref("imcache") + "."


def _settings_sections(name: str) -> list[str]:
    if name not in SETTINGS_PAGES:
        return []
    out = [".SH ENVIRONMENT"]
    for variable, text in ENVIRONMENT:
        out += [".TP", f"\\fB{_esc(variable)}\\fR", _prose(text)]
    out.append(".SH FILES")
    for path, text in FILES:
        out += [".TP", f"\\fI{_esc(path)}\\fR", _prose(text)]
    return out


def _exit_status() -> list[str]:
    """EXIT_CODES_HELP ("Exit codes: 0 ok; 1 user error; ...") as a list, code by code."""
    out = [".SH EXIT STATUS"]
    items = EXIT_CODES_HELP.removeprefix("Exit codes:").strip().rstrip(".").split(";")
    for item in (item.strip() for item in items):
        code, _, meaning = item.partition(" ")
        if code.isdigit():
            out += [".TP", f"\\fB{code}\\fR", _prose(meaning[:1].upper() + meaning[1:] + ".")]
        else:
            out += [".PP", _prose(item[:1].upper() + item[1:] + ".")]
    return out


def _examples(name: str) -> list[str]:
    out = [".SH EXAMPLES"] if name in EXAMPLES else []
    for what, lines in EXAMPLES.get(name, ()):
        out += [".PP", _prose(what), ".PP", ".RS 4", ".nf"]
        out += [_line(line) for line in lines.splitlines()]
        out += [".fi", ".RE"]
    return out


def _page(lines: list[str], see_also: list[str]) -> str:
    lines += [".SH SEE ALSO", ",\n".join(_ref(page) for page in see_also)]
    return "\n".join(lines) + "\n"


def _ref(page: str) -> str:
    return f"\\fB{_esc(page)}\\fR(1)"


def _see(page: str) -> str:
    return f"See {_ref(page)}."


def _paragraphs(help_text: str) -> list[str]:
    """click's help: paragraphs refilled; one that starts with a \\b line kept as it is."""
    text = inspect.cleandoc(help_text).partition("\f")[0]
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        if EXIT_CODES_HELP in block or not block.strip():
            continue  # EXIT STATUS has it
        lines = block.splitlines()
        if lines[0].strip() == "\b":
            out += [".PP", ".nf", *(_line(line) for line in lines[1:]), ".fi"]
        else:
            out += [".PP", *(_prose(line.strip()) for line in lines)]
    return out


def _prose(text: str) -> str:
    """A line of text: option names in bold, everything else escaped."""
    parts = OPTION_WORD.split(text)
    done = "".join(f"\\fB{_esc(p)}\\fR" if i % 2 else _esc(p) for i, p in enumerate(parts))
    return "\\&" + done if done.startswith(".") else done


def _line(text: str) -> str:
    """A line kept as it is (no-fill): escaped, and never read as a request."""
    done = _esc(text)
    return "\\&" + done if done.startswith(".") else done


def _esc(text: str) -> str:
    """Text that roff prints as it is: backslashes, dashes (\\- is what people type), quotes
    (' at a line's start is a request; both quotes would print as typographic ones) and any
    character beyond ASCII (as \\[uXXXX], so no input encoding is assumed)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = text.replace("'", "\\(aq").replace("`", "\\(ga")
    return "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)


def _arg(text: str) -> str:
    """A macro argument: escaped and quoted (a double quote inside becomes \\(dq)."""
    return '"' + _esc(text).replace('"', "\\(dq") + '"'


def write_pages(folder: str) -> list[str]:
    """Write every page into `folder`; remove imcache pages that no command makes any more."""
    from imcache.cli.main import cli

    pages = man_pages(cli)
    os.makedirs(folder, exist_ok=True)
    for stale in os.listdir(folder):
        if stale.startswith("imcache") and stale.endswith(".1") and stale not in pages:
            os.remove(os.path.join(folder, stale))
    for name, text in pages.items():
        with open(os.path.join(folder, name), "w", encoding="ascii", newline="\n") as handle:
            handle.write(text)
    return sorted(pages)


def main(argv: Sequence[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: python -m imcache.cli.manpage [DIR]  (DIR: man by default)", file=sys.stderr)
        return 2
    folder = argv[0] if argv else "man"
    if os.path.exists(folder) and not os.path.isdir(folder):
        print(f"error: {folder} is not a folder; give the folder for the pages", file=sys.stderr)
        return 2
    try:
        written = write_pages(folder)
    except OSError as error:
        print(f"error: cannot write the pages into {folder}: {error.strerror}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} pages into {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
