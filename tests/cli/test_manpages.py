"""The man pages in man/: made from the click app, fresh, clean roff, and rendered by a real man."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from imcache.cli.main import COMMANDS, cli
from imcache.cli.manpage import man_pages
from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
MAN = REPO / "man"
PAGES = man_pages(cli)
REGENERATE = "run `python -m imcache.cli.manpage man` (or `make man`)"


def rendered(page: Path) -> str:
    """What `man -l` shows at 80 columns, with runs of white space made one space."""
    man = require_tool("man")
    env = {**os.environ, "MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat", "LC_ALL": "C.UTF-8"}
    done = subprocess.run([man, "-l", str(page)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"man -l {page}: {done.stderr}"
    # groff elsewhere may print \- as U+2212 (Debian's man.local makes it ASCII): same option
    return done.stdout.replace("\u2212", "-")


def flat(text: str) -> str:
    return " ".join(text.split())


def troff_warnings(page: Path) -> list[str]:
    groff = require_tool("groff")
    found = []
    for device in ([], ["-Tutf8"], ["-Tutf8", "-rLL=60n"]):
        done = subprocess.run(
            [groff, "-man", "-ww", "-z", *device, str(page)], capture_output=True, text=True
        )
        if done.returncode != 0 or done.stderr:
            found.append(f"groff {' '.join(device)}: exit {done.returncode}: {done.stderr}")
    return found


def test_committed_pages_are_up_to_date() -> None:
    committed = sorted(path.name for path in MAN.iterdir())
    assert committed == sorted(PAGES), f"man/ holds {committed}, not {sorted(PAGES)}: {REGENERATE}"
    for name, text in PAGES.items():
        assert (MAN / name).read_text() == text, f"man/{name} is out of date: {REGENERATE}"


def test_a_page_for_imcache_and_for_each_command() -> None:
    assert set(PAGES) == {"imcache.1", *(f"imcache-{name}.1" for name in COMMANDS)}


@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_formats_without_a_warning(name: str) -> None:
    assert troff_warnings(MAN / name) == []
    # A bare - may print as a hyphen (U+2010) that no shell takes for an option's dash.
    for number, line in enumerate(PAGES[name].splitlines(), 1):
        if not line.startswith((".TH", '.\\"')):
            assert not re.search(r"(?<!\\)-", line), f"{name}:{number}: bare - in {line!r}"


def _commands(name: str) -> list[tuple[str, click.Command]]:
    """The commands that page `name` documents, with their own names."""
    if name == "imcache.1":
        return [("imcache", cli)]
    command_name = name.removeprefix("imcache-").removesuffix(".1")
    command = cli.get_command(click.Context(cli), command_name)
    assert command is not None
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        subs = [(n, command.get_command(ctx, n)) for n in command.list_commands(ctx)]
        return [(command_name, command), *((n, c) for n, c in subs if c is not None)]
    return [(command_name, command)]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_man_shows_every_option_with_its_help(name: str) -> None:
    text = rendered(MAN / name)
    assert text.splitlines()[0].split()[0] == name.upper().replace(".1", "(1)")
    options = [
        param
        for _, command in _commands(name)
        for param in command.params
        if isinstance(param, click.Option)
    ]
    for option in options:
        for word in [*option.opts, *option.secondary_opts]:
            # an option's entry: its names begin a line of the OPTIONS list
            tag = rf"^ +(\S+, )*{re.escape(word)}(,| |$)"
            assert re.search(tag, text, re.M), f"{name}: no entry for {word}\n{text}"
        assert flat(option.help or "") in flat(text), f"{name}: {option.help!r} not shown"
    assert re.search(r"^ +-h, --help|^ +--help", text, re.M), f"{name}: no --help"


def test_imcache_page_lists_every_command_and_the_settings() -> None:
    text = rendered(MAN / "imcache.1")
    for name in COMMANDS:
        assert re.search(rf"^ {{7}}{name}\b", text, re.M), f"{name} is not in imcache(1)"
        assert f"imcache-{name}(1)" in text
    for section in ("ENVIRONMENT", "FILES", "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), section
    for variable in ("IMCACHE_BASE_DIR", "IMCACHE_PATH", "IMCACHE_COLOR", "NO_COLOR"):
        assert re.search(rf"^ {{7}}{variable}$", text, re.M), variable
    assert "$XDG_CONFIG_HOME/imcache/config.toml" in text
    assert "130    Interrupted" in text


def test_session_page_covers_its_subcommands() -> None:
    text = rendered(MAN / "imcache-session.1")
    assert re.search(r"^   session start$", text, re.M)
    assert re.search(r"^   session status$", text, re.M)
    assert "imcache [GLOBAL OPTIONS] session status [OPTIONS]" in text


def test_roff_escapes_survive_rendering(tmp_path: Path) -> None:
    """Help text that roff would misread: a leading dot or quote, backslashes, non-ASCII."""

    @click.group(name="imcache")
    def group() -> None:
        """Tricky text.\n\n.hidden line\n'quoted line\nC:\\path\\to and \\fB not bold, naïve"""

    @group.command("odd")
    @click.option("--level-two", metavar="N-M", help=".dot first; 'quote' \\n stays")
    def odd(level_two: str) -> None:
        """An odd one.\n\n\b\n  .kept as is\n  'also \\x"""

    pages = man_pages(group)
    for name, text in pages.items():
        (tmp_path / name).write_text(text)
        assert troff_warnings(tmp_path / name) == []
    root = flat(rendered(tmp_path / "imcache.1"))
    assert ".hidden line 'quoted line C:\\path\\to and \\fB not bold, naïve" in root
    page = rendered(tmp_path / "imcache-odd.1")
    assert re.search(r"^ +--level-two N-M$", page, re.M)
    assert ".dot first; 'quote' \\n stays" in flat(page)
    assert "\n         .kept as is\n         'also \\x\n" in page  # as typed, 2 in


def test_the_module_writes_the_pages(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "imcache-gone.1").write_text("a command that no longer exists")
    (out / "notes.txt").write_text("not a page: kept")
    command = [sys.executable, "-m", "imcache.cli.manpage", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*PAGES, "notes.txt"])
    assert all((out / name).read_text() == text for name, text in PAGES.items())
    again = subprocess.run([*command[:-1], str(out / "notes.txt")], capture_output=True, text=True)
    assert again.returncode == 2
    assert len(again.stderr.splitlines()) == 1, again.stderr
    assert "notes.txt is not a folder" in again.stderr


def test_no_command_imports_the_generator() -> None:
    probe = (
        "import sys\n"
        "from imcache.cli.main import COMMANDS, cli\n"
        "[cli.get_command(None, name) for name in COMMANDS]\n"
        "print('imcache.cli.manpage' in sys.modules)\n"
    )
    found = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert found.stdout.strip() == "False", found.stderr


def test_make_install_places_pages_and_completions(tmp_path: Path) -> None:
    make = shutil.which("make") or pytest.skip("make is not installed")
    done = subprocess.run(
        [make, "-s", "-C", str(REPO), "install", f"DESTDIR={tmp_path}", "PREFIX=/usr"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    share = tmp_path / "usr" / "share"
    placed = {
        share / "bash-completion/completions/imcache": REPO / "completions/imcache.bash",
        share / "zsh/site-functions/_imcache": REPO / "completions/_imcache",
        share / "fish/vendor_completions.d/imcache.fish": REPO / "completions/imcache.fish",
        **{share / "man/man1" / name: MAN / name for name in PAGES},
    }
    for target, source in placed.items():
        assert target.read_bytes() == source.read_bytes(), target
    assert sorted(p.name for p in (share / "man/man1").iterdir()) == sorted(PAGES)
    assert re.search(r"^ +--dry-run$", rendered(share / "man/man1/imcache-run.1"), re.M)
    env = {**os.environ, "MANPATH": str(share / "man")}
    found = subprocess.run(
        [require_tool("man"), "-w", "imcache-run"], env=env, capture_output=True, text=True
    )
    assert found.stdout.strip() == str(share / "man/man1/imcache-run.1"), found.stderr
