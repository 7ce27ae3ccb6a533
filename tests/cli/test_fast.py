"""The hit without click (cli/fast.py): the same bytes and exit code as the click command,
click and rich never imported on a hit, and a handover that leaves the cache as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

COPY = {
    "name": "cp",
    "tool-version": "coreutils",
    "schema-version": "0.5",
    "description": "Copies a file.",
    "command-line": "cp [IN] [OUT]",
    "inputs": [
        {"id": "in_file", "name": "in_file", "type": "File", "value-key": "[IN]"},
        {
            "id": "out",
            "name": "out",
            "type": "String",
            "value-key": "[OUT]",
            "optional": True,
            "default-value": "copy.bin",
        },
    ],
    "output-files": [{"id": "out_file", "name": "out_file", "path-template": "[OUT]"}],
}
FULL = "import sys; from imcache.cli.main import main; sys.argv[0] = 'imcache'; main()"
PROBE = (
    "import sys; from imcache.cli.fast import serve_hit\n"
    "code = serve_hit(sys.argv[1:])\n"
    "heavy = sorted(m for m in ('click', 'rich', 'imcache.cli.main') if m in sys.modules)\n"
    "print(code, ','.join(heavy), file=sys.stderr)\n"
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A catalogue with t.Copy, an input older than the memo's racy window, and its entry."""
    root = tmp_path_factory.mktemp("fast")
    (root / "cat" / "t").mkdir(parents=True)
    (root / "cat" / "t" / "Copy.json").write_text(json.dumps(COPY))
    (root / "in.bin").write_bytes(os.urandom(4096))
    time.sleep(2.2)  # the memo keeps only digests of files older than 2 s
    group = ["--base-dir", str(root / "base"), "--interfaces", str(root / "cat")]
    for out in ("copy.bin", "x.bin"):
        first = full([*group, "run", "t.Copy", "--in-file", "in.bin", "--out", out], root)
        assert first.returncode == 0, first.stderr
    return root, group


def env() -> dict[str, str]:
    unset = ("NO_COLOR", "IMCACHE_COLOR", "_IMCACHE_COMPLETE", "MAKEFLAGS")
    return {k: v for k, v in os.environ.items() if k not in unset}


def full(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-c", FULL, *argv]
    return subprocess.run(command, cwd=cwd, env=env(), capture_output=True, check=False)


def fast(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "imcache", *argv]
    return subprocess.run(command, cwd=cwd, env=env(), capture_output=True, check=False)


def probe(argv: list[str], cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], cwd=cwd, env=env(), capture_output=True, text=True
    )
    return done.stderr.splitlines()[-1].split(" ")


HITS = [
    ["run", "t.Copy", "--in-file", "in.bin"],
    ["run", "t.Copy", "--in-file=in.bin", "--json"],
    ["run", "--get", "out_file", "t.Copy", "--in-file", "in.bin", "--out", "x.bin"],
    ["--color=always", "run", "t.Copy", "--get=out_file", "--in-file", "in.bin"],
    ["run", "t.Copy", "--in-file", "in.bin", "--json", "--json"],
]


@pytest.mark.parametrize("words", HITS)
def test_a_hit_says_and_prints_what_the_click_command_does(
    setup: tuple[Path, list[str]], words: list[str]
) -> None:
    root, group = setup
    assert probe([*group, *words], root) == ["0", ""]  # served, click never imported
    ours, theirs = fast([*group, *words], root), full([*group, *words], root)
    assert (ours.returncode, ours.stdout, ours.stderr) == (
        theirs.returncode,
        theirs.stdout,
        theirs.stderr,
    )
    assert b"collecting precomputed outputs" in ours.stderr


HANDED_OVER = [
    ["run", "t.Copy", "--in-file", "in.bin", "--out", "new.bin"],  # a miss
    ["run", "t.Copy", "--in-file", "in.bin", "--get", "nothing"],  # an error
    ["run", "t.Copy", "--in-file", "in.bin", "--json", "--get", "out_file"],
    ["run", "t.Copy", "--in-file", "in.bin", "--dry-run"],
    ["run", "t.Copy", "--help"],
    ["run", "t.Copy", "--in-file", "in.bin", "--json=1"],
    ["run", "t.Copy", "--in-file", "missing.bin"],
    ["--version"],
    ["ls"],
]


@pytest.mark.parametrize("words", HANDED_OVER)
def test_what_is_not_a_certain_hit_goes_to_click_untouched(
    setup: tuple[Path, list[str]], words: list[str]
) -> None:
    root, group = setup
    events = root / "base" / "imcache_mem" / "events.log"
    before = events.read_bytes()
    assert probe([*group, *words], root) == ["None", ""]
    assert events.read_bytes() == before  # no hit logged, nothing run
    ours, theirs = fast([*group, *words], root), full([*group, *words], root)
    assert ours.returncode == theirs.returncode
    if "new.bin" not in words:  # (the miss ran: its twin is a hit)
        assert (ours.stdout, ours.stderr) == (theirs.stdout, theirs.stderr)


def test_an_input_the_memo_does_not_vouch_for_is_hashed_by_the_full_command(
    setup: tuple[Path, list[str]],
) -> None:
    root, group = setup
    (root / "young.bin").write_bytes(b"just written")
    words = [*group, "run", "t.Copy", "--in-file", "young.bin", "--out", "y.bin"]
    assert fast(words, root).returncode == 0  # a miss: run by the full command
    assert probe(words, root) == ["None", ""]  # a hit now, but not memoised yet: handed over
    assert b"collecting precomputed" in fast(words, root).stderr
