"""Man pages from the click app: `python -m imcache.cli.manpage [DIR]` writes them (default man/).

One page for `imcache` and one per command (`imcache-run.1`, ...; a group such as `session` gets
one page that covers its subcommands). cli/roff.py renders them from the click commands; what
click knows nothing of (ENVIRONMENT, FILES, EXAMPLES, a paragraph more for some commands) is
written here. The date is a constant, not today's, so that regenerating gives the same bytes.

Nothing on a command's path imports this module: a run must not pay for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from imcache import __version__
from imcache.cli import roff
from imcache.cli.common import EXIT_CODES_HELP
from imcache.cli.roff import Examples, Manual, Section

# Fixed, for reproducible pages: bump it when the pages change in substance.
MANUAL_DATE = "2026-11-25"
MANUAL_TITLE = "imcache manual"

MRCAT = "imcache run mrtrix3.MRCat --axis 3 --in-files a.nii b.nii"

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
    "explain": (
        (
            "Why a run misses: its key's fields and how the nearest entry differs:",
            "imcache explain fsl.BET --in-file t1.nii.gz",
        ),
    ),
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
        "An entry that another process is running or using is never removed. A clear of more "
        "than 100 entries returns once they are out of the cache; their files are deleted after "
        "it by a detached process (--wait waits for it, as a smaller clear always does)."
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


MANUAL = Manual(
    program="imcache",
    version=__version__,
    date=MANUAL_DATE,
    title=MANUAL_TITLE,
    generator="python -m imcache.cli.manpage",
    exit_codes=EXIT_CODES_HELP,
    examples=EXAMPLES,
    more=MORE,
    sections=(Section("ENVIRONMENT", "B", ENVIRONMENT), Section("FILES", "I", FILES)),
    section_pages=SETTINGS_PAGES,
)


def man_pages(group: click.Group) -> dict[str, str]:
    """Every page, as {file name: roff text}, from the `imcache` group (or one like it)."""
    return roff.man_pages(group, MANUAL)


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
