"""Completion without click (cli/fast_complete.py): for every shell, what it writes and its exit
code are click's own (click's shell_completion called directly for the reference), on the
built-in catalogue, a definition folder given by --interfaces or IMCACHE_PATH and a nipype name;
what it is not sure of goes to click untouched; and it imports neither click nor rich."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imcache.cli.fast_complete import completion_args, serve_completion, split_arg_string
from tests.cli.test_fast import COPY

SHELLS = ("bash", "zsh", "fish")
CHOOSER = {  # a choice holding a colon (zsh escapes those beside a help text only)
    "name": "chooser",
    "tool-version": "1",
    "schema-version": "0.5",
    "description": "Picks.",
    "command-line": "echo [MODE] [FLAG] [FILES]",
    "inputs": [
        {
            "id": "mode",
            "name": "mode",
            "type": "String",
            "value-key": "[MODE]",
            "value-choices": ["a:b", "plain", "pl2"],
        },
        {
            "id": "flag",
            "name": "flag",
            "type": "Flag",
            "value-key": "[FLAG]",
            "command-line-flag": "-f",
            "optional": True,
        },
        {
            "id": "files",
            "name": "files",
            "type": "File",
            "list": True,
            "value-key": "[FILES]",
            "optional": True,
        },
    ],
}


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A definition folder holding t.Copy and t.Chooser."""
    root = tmp_path_factory.mktemp("defs")
    (root / "t").mkdir()
    (root / "t" / "Copy.json").write_text(json.dumps(COPY))
    (root / "t" / "Chooser.json").write_text(json.dumps(CHOOSER))
    return root


def shell_env(shell: str, words: list[str], incomplete: str) -> dict[str, str]:
    """COMP_WORDS and COMP_CWORD as each shell's script from `imcache completion` sets them."""
    line = ["imcache", *words, incomplete]
    if shell == "fish":  # the line up to the cursor, and the word at it
        return {"COMP_WORDS": " ".join(line), "COMP_CWORD": incomplete}
    joiner = "\n" if shell == "bash" else " "  # bash's script sets IFS to a newline
    return {"COMP_WORDS": joiner.join(line), "COMP_CWORD": str(len(words) + 1)}


def ask(
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    instruction: str,
    words: list[str],
    incomplete: str,
) -> tuple[tuple[int | None, bytes], tuple[int | None, bytes]]:
    """(exit code, stdout) of the fast path, then of click's own completion, in this process."""
    from imcache.cli.main import cli

    shell = instruction.partition("_")[0]
    for name, value in {
        "_IMCACHE_COMPLETE": instruction,
        **shell_env(shell, words, incomplete),
    }.items():
        monkeypatch.setenv(name, value)
    ours = serve_completion(os.environ)
    our_out = capsysbinary.readouterr().out
    with pytest.raises(SystemExit) as done:
        cli.main(args=[])
    code = done.value.code
    return (ours, our_out), (code if isinstance(code, int) else None, capsysbinary.readouterr().out)


SERVED = [
    (["run", "fsl.Merge"], "--in"),  # the bench's Tab
    (["run", "fsl.Merge"], "--"),
    (["run", "fsl.Merge"], "-"),
    (["run", "fsl.Merge"], "--d"),  # an input and a run option
    (["run", "fsl.Merge", "--json"], "--"),  # a given run option is not offered again
    (["run", "--get", "merged_file", "fsl.Merge", "--help"], "--"),
    (["run", "fsl.Merge", "--export", "a=b", "--depends=x"], "--"),  # repeatable: offered
    (["run", "fsl.Merge", "--dimension"], ""),
    (["run", "fsl.Merge", "--dimension"], "t"),
    (["run", "fsl.Merge", "--dimension", "t"], ""),  # one value given: nothing more
    (["run", "fsl.Merge", "--in-files"], "b"),
    (["run", "fsl.Merge", "--in-files", "a.nii"], ""),  # a list takes more values
    (["run", "fsl.Merge", "--tr"], ""),
    (["run", "fsl.Merge"], ""),
    (["run"], "fsl.M"),
    (["run"], ""),
    (["run", "--json"], "mrtrix3."),
    (["run"], "--j"),
    (["run"], "--"),
    (["--base-dir", "somewhere", "run", "mrtrix3.MRCat"], "--a"),
    (["--color", "never", "run", "mrtrix3.MRCat", "--axis"], ""),
    (["run", "fsl.Merge", "--in-files", "it's"], ""),  # shlex's words, an open quote
    (["run", "fsl.Merge", "--in-files"], "'my fi"),
]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("words", "incomplete"), SERVED)
def test_the_built_in_catalogue_completes_as_click_does(
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    shell: str,
    words: list[str],
    incomplete: str,
) -> None:
    ours, theirs = ask(monkeypatch, capsysbinary, f"{shell}_complete", words, incomplete)
    assert ours == theirs
    assert ours[0] == 0


FOLDER_CASES = [  # words, the word completed, what must be among the offers
    (["run", "t.Chooser"], "--", b"--mode"),
    (["run", "t.Chooser", "--mode"], "", b"a:b"),
    (["run", "t.Chooser", "--mode"], "pl", b"pl2"),
    (["run", "t.Chooser", "--files", "a", "b"], "c", b"file,c"),
    (["run", "t.Chooser", "--flag"], "--f", b"--files"),
    (["run", "t.Copy", "--in_file"], "x", b"file,x"),  # the id's spelling of an option
    (["run"], "t.", b"t.Chooser"),
]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("words", "incomplete", "offered"), FOLDER_CASES)
@pytest.mark.parametrize("how", ["--interfaces", "--interfaces=", "IMCACHE_PATH"])
def test_a_definition_folder_completes_as_click_does(
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    catalogue: Path,
    shell: str,
    words: list[str],
    incomplete: str,
    offered: bytes,
    how: str,
) -> None:
    if how == "IMCACHE_PATH":
        monkeypatch.setenv("IMCACHE_PATH", str(catalogue))
        group: list[str] = []
    else:
        group = [f"--interfaces={catalogue}"] if how.endswith("=") else [how, str(catalogue)]
    ours, theirs = ask(monkeypatch, capsysbinary, f"{shell}_complete", [*group, *words], incomplete)
    assert ours == theirs
    assert ours[0] == 0
    assert offered.replace(b",", b"\n" if shell == "zsh" else b",") in ours[1]


@pytest.fixture(scope="module")
def nipype_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding nipype's index and one description (made once: it imports nipype)."""
    pytest.importorskip("nipype")
    cache = tmp_path_factory.mktemp("xdg")
    code = (
        "from imcache.core.interfaces.nipype_source import find_description, list_nipype\n"
        "assert list_nipype()[1] and find_description('mrtrix3', 'MRDeGibbs')\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    return cache


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(
    ("words", "incomplete"),
    [(["run", "mrtrix3.MRDeGibbs"], "--"), (["run"], "mrtrix3.MRD"), (["run"], "")],
)
def test_a_nipype_name_completes_as_click_does(
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    nipype_cache: Path,
    shell: str,
    words: list[str],
    incomplete: str,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(nipype_cache))
    ours, theirs = ask(monkeypatch, capsysbinary, f"{shell}_complete", words, incomplete)
    assert ours == theirs
    assert ours[0] == 0
    assert b"MRDeGibbs" in ours[1] or b"--in-file" in ours[1]


HANDED_OVER = [
    ([], "ru"),  # a command's name
    ([], "--b"),  # a group option
    (["--base-dir"], ""),  # its value
    (["--remote", "s3://b", "run", "fsl.Merge"], "--"),  # a group option not read here
    (["-h", "run", "fsl.Merge"], "--"),
    (["ls"], "--"),  # another command
    (["show"], ""),
    (["run", "nope.Nothing"], "--"),  # an unknown interface
    (["run", "nope.Nothing", "--in"], ""),
    (["run", "fsl.Merge", "--get"], ""),  # a run option's value
    (["run", "fsl.Merge", "--export"], "a"),
    (["run", "fsl.Merge", "--get", "--get"], ""),  # click reads the last word as an option
    (["run", "fsl.Merge", "--"], "--x"),  # after "--"
    (["run", "fsl.Merge"], "--in-files=b"),  # a value joined by "=": click splits it
    (["run", "fsl.Merge"], "="),
    (["run", "fsl.Merge", "--json=1"], "--"),  # words click's parser reads its own way
]


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize(("words", "incomplete"), HANDED_OVER)
def test_what_is_not_certain_goes_to_click_with_nothing_written(
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
    shell: str,
    words: list[str],
    incomplete: str,
) -> None:
    ours, theirs = ask(monkeypatch, capsysbinary, f"{shell}_complete", words, incomplete)
    assert ours == (None, b"")
    assert theirs[0] == 0


def test_a_word_that_is_not_text_goes_to_click(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    words, incomplete = ["run", "fsl.Merge", "--in-files"], "b\udcff"  # bytes of no encoding
    ours, theirs = ask(monkeypatch, capsysbinary, "bash_complete", words, incomplete)
    assert ours == (None, b"")
    assert theirs == (3, b"")  # click's answer cannot be encoded either: a crash, logged


@pytest.mark.parametrize(
    "instruction", ["bash_source", "zsh_source", "fish_source", "powershell_complete", "bash", ""]
)
def test_other_instructions_go_to_click(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes], instruction: str
) -> None:
    monkeypatch.setenv("_IMCACHE_COMPLETE", instruction)
    monkeypatch.setenv("COMP_WORDS", "imcache run fsl.Merge --in")
    monkeypatch.setenv("COMP_CWORD", "3")
    assert serve_completion(os.environ) is None
    assert capsysbinary.readouterr().out == b""


def test_words_a_shell_cannot_send_go_to_click(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    monkeypatch.setenv("_IMCACHE_COMPLETE", "bash_complete")
    monkeypatch.setenv("COMP_WORDS", "imcache run fsl.Merge --in")
    monkeypatch.setenv("COMP_CWORD", "three")  # click fails on it: so must click say it
    assert serve_completion(os.environ) is None
    monkeypatch.delenv("COMP_CWORD")
    assert serve_completion(os.environ) is None
    assert capsysbinary.readouterr().out == b""


def test_run_options_are_those_the_click_command_declares() -> None:
    import click

    from imcache.cli.fast_complete import RUN_OPTIONS
    from imcache.cli.run_cmd import run

    declared = [
        (param.name, *param.opts, param.help, param.multiple)
        for param in run.params
        if isinstance(param, click.Option)
    ]
    assert list(RUN_OPTIONS) == declared


@given(st.text(alphabet=" \t\r\n\x0bab-=:'\"\\é", max_size=30))
def test_words_are_split_as_click_splits_them(line: str) -> None:
    from click.shell_completion import split_arg_string as clicks

    assert split_arg_string(line) == clicks(line)


@pytest.mark.parametrize("shell", SHELLS)
def test_each_shells_words_are_read_as_click_reads_them(
    shell: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.shell_completion import get_completion_class

    from imcache.cli.main import cli

    for words, incomplete in [
        (["run", "x"], "--in"),
        (["run", "x", "--in"], "--in"),
        (["run"], ""),
    ]:
        env = shell_env(shell, words, incomplete)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        cls = get_completion_class(shell)
        assert cls is not None
        reference = cls(cli, {}, "imcache", "_IMCACHE_COMPLETE").get_completion_args()
        assert completion_args(shell, env) == reference


# --- the real console script, in its own process --------------------------------------------

PROBE = (
    "import os, sys; from imcache.cli.fast_complete import serve_completion\n"
    "code = serve_completion(os.environ)\n"
    "heavy = sorted(m for m in ('click', 'rich', 'imcache.cli.main') if m in sys.modules)\n"
    "print(code, ','.join(heavy), file=sys.stderr)\n"
)
FULL = "import sys; from imcache.cli.main import main; sys.argv[0] = 'imcache'; main()"


def process(code: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, *code], env={**os.environ, **env}, capture_output=True)


@pytest.mark.parametrize(
    ("words", "incomplete"),
    [(["run", "fsl.Merge"], "--in"), (["run"], "fsl.M"), (["run", "fsl.Merge", "--in-files"], "")],
)
def test_the_console_script_completes_without_click_or_rich(
    words: list[str], incomplete: str
) -> None:
    env = {"_IMCACHE_COMPLETE": "zsh_complete", **shell_env("zsh", words, incomplete)}
    probed = process(["-c", PROBE], env)
    assert probed.stderr.decode().splitlines()[-1] == "0 "  # served; click never imported
    ours, theirs = process(["-m", "imcache"], env), process(["-c", FULL], env)
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, theirs.stdout, theirs.stderr)
    assert ours.stdout == probed.stdout


def test_the_console_script_hands_over_to_click() -> None:
    env = {"_IMCACHE_COMPLETE": "bash_complete", **shell_env("bash", ["run", "nope.X"], "--")}
    probed = process(["-c", PROBE], env)
    assert (probed.stdout, probed.stderr.decode().splitlines()[-1]) == (b"", "None ")
    ours, theirs = process(["-m", "imcache"], env), process(["-c", FULL], env)
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, theirs.stdout, theirs.stderr)
    assert b"plain,--json" in ours.stdout  # click's answer: run's own options


def test_a_tab_without_stdout_ends_as_clicks_does() -> None:
    """A shell that closed stdout (`imcache >&-`: Python's sys.stdout is None) gets click's
    answer: nothing written, exit 0; not an internal error (exit 3) from writing to None."""
    env = {"_IMCACHE_COMPLETE": "bash_complete", **shell_env("bash", ["run", "fsl.Merge"], "--in")}
    closed = ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable]  # stdout closed
    ours = subprocess.run(
        [*closed, "-m", "imcache"],
        env={**os.environ, **env},
        capture_output=False,
        stderr=subprocess.PIPE,
    )
    theirs = subprocess.run(
        [*closed, "-c", FULL], env={**os.environ, **env}, stderr=subprocess.PIPE
    )
    assert (ours.returncode, ours.stderr) == (theirs.returncode, theirs.stderr) == (0, b"")
