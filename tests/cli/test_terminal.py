"""Output for a person at a terminal, tried in a real one (util-linux `script` gives imcache a
pseudo-terminal): coloured hit/miss/error lines, a spinner while the tool is silent, tables for
`ls` and `stats`; none of it in pipes, with NO_COLOR, TERM=dumb or --color never; --color always
forces the colours only (a spinner or a table in a pipe or a log would be garbage). The tool's own
output always arrives whole."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import first_on_path, imcache, require_tool

GREEN, YELLOW, RED, BOLD = "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[1m"
ERASE = "\r\x1b[2K"
TOOL_LINES = ["tool line 1", "tool line 2 on stderr"]


@pytest.fixture
def slow_mrcat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """mrcat behind a wrapper that talks, is silent for a second (long enough for the spinner),
    with OPEN_LINE set leaves a line open for a second, talks on stderr; then the real mrcat,
    quiet. Returns the run's argv after `imcache`."""
    real = require_tool("mrcat")
    script = (
        "#!/bin/sh\n"
        f'echo "{TOOL_LINES[0]}"\n'
        "sleep 1\n"
        'if [ -n "$OPEN_LINE" ]; then printf "progress 50%%"; sleep 1; echo " done"; fi\n'
        "sleep 0.2\n"  # stdout and stderr are two pipes: give the first the time to arrive
        f'echo "{TOOL_LINES[1]}" >&2\n'
        f'MRTRIX_QUIET=1 exec "{real}" "$@"\n'
    )
    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": script})
    import nibabel as nib
    import numpy as np

    for index in range(2):
        data = np.random.default_rng(index).random((4, 4, 3), dtype=np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(tmp_path / f"v{index}.nii"))
    return ["run", "mrtrix3.MRCat", "--axis", "3", "--in-files", "v0.nii", "v1.nii"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the colour settings of whoever runs the tests (nor
    the flags of a `make -j test` around them)."""
    unset = ("NO_COLOR", "IMCACHE_COLOR", "TERM", "MAKEFLAGS", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return {**env, "TERM": "xterm-256color", **extra}


def in_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Everything a terminal would receive from `imcache ARGS`, run on a pseudo-terminal."""
    require_tool("script")
    command = shlex.join([sys.executable, "-m", "imcache", *args])
    done = subprocess.run(
        ["script", "-qec", f"stty cols 120 rows 40; exec {command}", "/dev/null"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    return done.stdout.decode("utf-8", errors="replace")


def in_pipe(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`imcache ARGS` with stdout and stderr on pipes (decoded as they are: \\r kept)."""
    done = subprocess.run(
        [sys.executable, "-m", "imcache", *args], cwd=cwd, env=env, capture_output=True, timeout=60
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def screen(raw: str) -> list[str]:
    """What stays on the screen: carriage returns, line erasing and colours applied."""
    lines, col, i = [""], 0, 0
    while i < len(raw):
        escape = re.match(r"\x1b\[([0-9;?]*)([A-Za-z])", raw[i:])
        if escape:
            if escape.group(2) == "K":
                lines[-1] = "" if escape.group(1) == "2" else lines[-1][:col]
            i += escape.end()
            continue
        char = raw[i]
        if char == "\r":
            col = 0
        elif char == "\n":
            lines.append("")
            col = 0
        else:
            lines[-1] = lines[-1][:col].ljust(col) + char + lines[-1][col + 1 :]
            col += 1
        i += 1
    return [line.rstrip() for line in lines if line.strip()]


def test_a_miss_on_a_terminal_spins_while_the_tool_is_silent_and_keeps_its_output(
    slow_mrcat: list[str], tmp_path: Path
) -> None:
    raw = in_terminal(slow_mrcat, tmp_path, clean_env(OPEN_LINE="1"))
    assert f"{YELLOW}imcache: mrtrix3.MRCat: running mrcat in " in raw
    assert f"{YELLOW}imcache: mrtrix3.MRCat: done in " in raw
    # The spinner drew its line during the second of silence, and erased it.
    spins = re.findall(r"\r\x1b\[2K[^\r\n]*imcache: mrtrix3\.MRCat: running mrcat [^\r\n]*", raw)
    assert spins, f"no spinner line in {raw!r}"
    assert "(0:0" in spins[0]
    # Never over the line the tool left open, during its second of silence.
    open_line = raw[raw.index("progress 50%") : raw.index(" done")]
    assert open_line == "progress 50%"
    shown = screen(raw)
    assert [line for line in shown if not line.startswith(("imcache:", "out_file:"))] == [
        TOOL_LINES[0],
        "progress 50% done",
        TOOL_LINES[1],
    ]
    assert shown[0].startswith("imcache: mrtrix3.MRCat: running mrcat in ")
    assert shown[-2].startswith("imcache: mrtrix3.MRCat: done in ")
    assert shown[-1].startswith("out_file: ")

    hit = in_terminal(slow_mrcat, tmp_path, clean_env())
    assert f"{GREEN}imcache: mrtrix3.MRCat: collecting precomputed outputs" in hit
    assert ERASE not in hit  # nothing runs, nothing spins


@pytest.mark.parametrize(
    ("flag", "extra"),
    [
        ([], {"NO_COLOR": "1"}),
        ([], {"TERM": "dumb"}),
        (["--color", "never"], {}),
    ],
    ids=["NO_COLOR", "TERM=dumb", "--color never"],
)
def test_a_terminal_that_asks_for_none_gets_plain_lines(
    slow_mrcat: list[str], tmp_path: Path, flag: list[str], extra: dict[str, str]
) -> None:
    env = clean_env(**extra)
    miss = in_terminal([*flag, *slow_mrcat], tmp_path, env)
    hit = in_terminal([*flag, *slow_mrcat], tmp_path, env)
    error = in_terminal([*flag, "run", "no.Such"], tmp_path, env)
    for raw in (miss, hit, error):
        assert "\x1b" not in raw, raw
    assert "imcache: mrtrix3.MRCat: running mrcat in " in miss
    assert all(f"{line}\r\n" in miss for line in TOOL_LINES)
    assert "imcache: mrtrix3.MRCat: collecting precomputed outputs" in hit
    assert "imcache: error: " in error


def test_an_error_on_a_terminal_is_red(tmp_path: Path) -> None:
    raw = in_terminal(["run", "no.Such"], tmp_path, clean_env())
    assert f"{RED}imcache: error: " in raw


def test_a_pipe_gets_the_same_words_without_escapes_unless_color_always(
    slow_mrcat: list[str], tmp_path: Path
) -> None:
    plain = in_pipe(slow_mrcat, tmp_path, clean_env())
    assert plain.returncode == 0, plain.stderr
    assert "\x1b" not in plain.stderr + plain.stdout
    assert plain.stderr.startswith("imcache: mrtrix3.MRCat: running mrcat in ")
    assert all(f"{line}\n" in plain.stderr for line in TOOL_LINES)

    forced = in_pipe(["--color", "always", *slow_mrcat, "--force"], tmp_path, clean_env())
    assert forced.returncode == 0, forced.stderr
    assert f"{YELLOW}imcache: mrtrix3.MRCat: running mrcat in " in forced.stderr
    assert ERASE not in forced.stderr  # colours only: no spinner frames in a pipe or a log
    assert all(f"{line}\n" in forced.stderr for line in TOOL_LINES)
    assert "\x1b" not in forced.stdout  # the results stay plain paths
    assert forced.stdout == plain.stdout

    # Under make -j other processes write to the same terminal: colours, but no redrawn line.
    parallel = clean_env(MAKEFLAGS=" -j2 --jobserver-auth=3,4")
    in_make = in_pipe(["--color", "always", *slow_mrcat, "--force"], tmp_path, parallel)
    assert f"{YELLOW}imcache: mrtrix3.MRCat: done in " in in_make.stderr
    assert "\x1b[2K" not in in_make.stderr


def imported(raw: str) -> set[str]:
    """Module names from `python -X importtime` lines."""
    return {line.rsplit("|", 1)[-1].strip() for line in raw.splitlines() if "import time:" in line}


def test_rich_is_imported_only_to_render_something(
    slow_mrcat: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    miss = in_pipe(slow_mrcat, tmp_path, clean_env())
    hit = in_pipe(slow_mrcat, tmp_path, clean_env())
    tty_hit = in_terminal(slow_mrcat, tmp_path, clean_env())
    forced = in_pipe(["--color", "always", *slow_mrcat, "--force"], tmp_path, clean_env())
    tty_miss = in_terminal([*slow_mrcat, "--force"], tmp_path, clean_env())
    assert "collecting precomputed outputs" in hit.stderr and "collecting" in tty_hit
    for raw in (miss.stderr, hit.stderr, tty_hit, forced.stderr):  # no table, bar or spinner
        assert "rich" not in imported(raw)
    assert "rich" in imported(tty_miss)  # the spinner's: the probe sees it when it is there


def test_ls_and_stats_are_tables_on_a_terminal_and_plain_lines_in_a_pipe(
    slow_mrcat: list[str], tmp_path: Path
) -> None:
    env = clean_env()
    assert in_pipe(slow_mrcat, tmp_path, env).returncode == 0
    ls_tty, stats_tty = (in_terminal([c], tmp_path, env) for c in ("ls", "stats"))
    ls_pipe, stats_pipe = (in_pipe([c], tmp_path, env).stdout for c in ("ls", "stats"))

    assert f"{BOLD}interface" in ls_tty and "last used" in ls_tty
    row = next(line for line in screen(ls_tty) if line.startswith("mrtrix3.MRCat"))
    assert re.fullmatch(
        r"mrtrix3\.MRCat\s+[0-9a-f]{12}\s+[\d.]+ [kM]?B\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+"
        r"\d{4}-\d\d-\d\d \d\d:\d\d",
        row,
    ), row
    assert "\x1b" not in ls_pipe
    forced = in_pipe(["--color", "always", "ls"], tmp_path, env).stdout
    assert forced == ls_pipe  # results piped on stay plain lines, whatever --color says
    assert re.fullmatch(r"mrtrix3\.MRCat  [0-9a-f]{12}  .* created .* used .*\n", ls_pipe)

    assert f"{GREEN}hits 0" in stats_tty and f"{YELLOW}misses 1" in stats_tty
    assert any(re.fullmatch(r"mrtrix3\.MRCat\s+1\s+.*B\s+0\s+1", s) for s in screen(stats_tty))
    assert "\x1b" not in stats_pipe
    assert stats_pipe.splitlines()[1].startswith("hits: 0, misses: 1, failures: 0")


@pytest.mark.parametrize(
    "args", [["--help"], ["run", "--help"], ["run", "mrtrix3.MRCat", "--help"]]
)
def test_help_lists_the_exit_codes(args: list[str]) -> None:
    result = imcache(*args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "Exit codes: 0 ok; 1 user error; 2 bad usage; 3 internal error" in text
    assert "130 interrupted (Ctrl-C); 143 stopped (SIGTERM); the tool's own code" in text
