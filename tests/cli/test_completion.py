"""Shell completion, driven through a real bash with the committed script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imcache.cli.completion import SHELLS, completion_script
from imcache.cli.main import cli
from tests.conftest import run_ok

REPO = Path(__file__).resolve().parents[2]
FILES = {"bash": "imcache.bash", "zsh": "_imcache", "fish": "imcache.fish"}


@pytest.mark.parametrize("shell", SHELLS)
def test_committed_scripts_are_up_to_date(shell: str) -> None:
    committed = (REPO / "completions" / FILES[shell]).read_text()
    assert committed == completion_script(cli, shell), (
        f"completions/{FILES[shell]} is stale: run "
        f"imcache completion {shell} > completions/{FILES[shell]}"
    )
    assert run_ok("completion", shell).stdout == committed


def bash_offers(line: str, cwd: Path, env: dict[str, str] | None = None) -> list[str]:
    """What bash's completion function puts in COMPREPLY for the words of `line` (the last
    word is the one being completed; a trailing space starts a new empty word)."""
    script = REPO / "completions" / "imcache.bash"
    words = line + ("''" if line.endswith(" ") else "")
    program = (
        f"source {script}\n"
        f"COMP_WORDS=({words})\n"
        "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n"
        "COMP_LINE='dummy'; COMP_POINT=0\n"
        # bash's own file completion happens after the function returns (`compopt -o default`):
        # stand in for bash there: list the matching files with compgen, as bash would.
        'compopt() { [ "$1 $2" = "-o default" ] &&'
        ' COMPREPLY+=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}")); }\n'
        "_imcache_completion imcache\n"
        "printf '%s\\n' \"${COMPREPLY[@]}\"\n"
    )
    bin_dir = str(Path(sys.executable).parent)
    full_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", **(env or {})}
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, "--norc", "-c", program], cwd=cwd, env=full_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [word for word in done.stdout.splitlines() if word]


def test_bash_completes_subcommands_and_options(isolated: Path) -> None:
    assert bash_offers("imcache cl", isolated) == ["clear"]
    assert {"config", "completion"} <= set(bash_offers("imcache co", isolated))
    assert "--base-dir" in bash_offers("imcache --b", isolated)


def test_bash_completes_interface_names_and_their_inputs(isolated: Path) -> None:
    assert bash_offers("imcache run mrtrix3.MRCa", isolated) == ["mrtrix3.MRCat"]
    offered = bash_offers("imcache run fsl.Merge --dimension t --", isolated)
    assert {"--in-files", "--merged-file", "--tr", "--json", "--export"} <= set(offered)
    assert bash_offers("imcache run fsl.Merge --dimension ", isolated) == ["t", "x", "y", "z", "a"]


def test_bash_completes_files_for_file_inputs(isolated: Path) -> None:
    (isolated / "brain.nii").write_text("")
    (isolated / "bold.nii").write_text("")
    offered = bash_offers("imcache run fsl.Merge --in-files b", isolated)
    assert sorted(offered) == ["bold.nii", "brain.nii"]


def test_bash_completes_catalogues_from_imcache_path(isolated: Path, tmp_path: Path) -> None:
    catalogue = tmp_path / "defs" / "mine"
    catalogue.mkdir(parents=True)
    source = REPO / "src/imcache/core/interfaces/catalogue/mrtrix3/MRCat.json"
    (catalogue / "Joiner.json").write_text(source.read_text())
    env = {"IMCACHE_PATH": str(tmp_path / "defs")}
    assert bash_offers("imcache run mine.J", isolated, env) == ["mine.Joiner"]
    flagged = f"imcache --interfaces {tmp_path / 'defs'} run mine.J"
    assert bash_offers(flagged, isolated) == ["mine.Joiner"]


def test_bash_completes_entry_keys_for_show(isolated: Path, make_nifti: object) -> None:
    import json

    from tests.conftest import require_tool

    require_tool("mrcat")
    for seed in (1, 2):
        make_nifti(f"v{seed}.nii", seed=seed)  # type: ignore[operator]
    done = run_ok("run", "mrtrix3.MRCat", "--in-files", "v1.nii", "v2.nii", "--json")
    key = json.loads(done.stdout)["key"]
    assert bash_offers(f"imcache show {key[:6]}", isolated) == [key]
