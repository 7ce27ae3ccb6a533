"""The examples a new user follows: each runs for real, with MRtrix3, as the user would run it.

examples/pipeline.sh (a shell script), examples/Makefile (make, `make clean`, make again),
examples/fsl.mk (FSL is not installed here: its command lines are checked with --dry-run) and
examples/ci/github-actions.yml (its run steps, in order, as two CI jobs with the cache folder
saved and restored between them).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, first_on_path, require_tool

EXAMPLES = REPO / "examples"
WORKFLOW = EXAMPLES / "ci" / "github-actions.yml"
TOOLS = ("mrcat", "mrmath", "mrconvert")
Calls = Callable[[], dict[str, int]]


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Calls:
    """`imcache` on PATH as a user has it, and MRtrix3's tools behind wrappers that count calls."""
    counter = tmp_path / "tool-calls"
    scripts = {"imcache": f'#!/bin/sh\nexec "{sys.executable}" -m imcache "$@"\n'}
    for name in TOOLS:
        scripts[name] = f'#!/bin/sh\necho {name} >> "{counter}"\nexec "{require_tool(name)}" "$@"\n'
    first_on_path(tmp_path / "bin", monkeypatch, scripts)
    monkeypatch.setenv("MRTRIX_QUIET", "1")  # readable failures: no progress bars in stderr

    def calls() -> dict[str, int]:
        lines = counter.read_text().split() if counter.exists() else []
        return {name: lines.count(name) for name in TOOLS if name in lines}

    return calls


def demo_volumes(folder: Path) -> list[Path]:
    """The demo's inputs, made by examples/demo_data.py: two real fMRI volumes."""
    made = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo_data.py"), str(folder)],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    return [folder / "vol0.nii.gz", folder / "vol1.nii.gz"]


def ok(*argv: str | Path, **options: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **options)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def said(stderr: str, what: str) -> list[str]:
    """imcache's lines that say `what` (running ..., collecting precomputed outputs ...)."""
    return [line for line in stderr.splitlines() if line.startswith("imcache:") and what in line]


# --- examples/pipeline.sh ----------------------------------------------------------------------


def test_pipeline_script_misses_every_step_then_hits_every_step(
    tools: Calls, tmp_path: Path
) -> None:
    import nibabel as nib
    import numpy as np

    volumes = demo_volumes(tmp_path / "data")
    first = ok(EXAMPLES / "pipeline.sh", *volumes)
    assert len(said(first.stderr, ": running ")) == 3
    assert said(first.stderr, "collecting precomputed outputs") == []
    assert tools() == {"mrcat": 1, "mrmath": 1, "mrconvert": 1}

    second = ok(EXAMPLES / "pipeline.sh", *volumes)
    assert len(said(second.stderr, "collecting precomputed outputs")) == 3
    assert said(second.stderr, ": running ") == []
    assert tools() == {"mrcat": 1, "mrmath": 1, "mrconvert": 1}  # nothing ran again
    assert said(second.stderr, "freed 0 B in 0 entries; 3 kept")  # clear --previous kept all

    outputs = dict(line.split(": ", 1) for line in second.stdout.splitlines())
    assert outputs == dict(line.split(": ", 1) for line in first.stdout.splitlines())
    merged = nib.load(outputs["merged"])
    mean = nib.load(outputs["mean"])
    assert merged.shape == (128, 96, 24, 2) and mean.shape == (128, 96, 24)
    inputs = [nib.load(path).get_fdata() for path in volumes]
    assert np.allclose(mean.get_fdata(), (inputs[0] + inputs[1]) / 2, rtol=1e-4)
    assert nib.load(outputs["mean_int16"]).get_data_dtype() == np.int16


def test_pipeline_script_without_volumes_says_how_to_call_it(tools: Calls) -> None:
    done = subprocess.run([EXAMPLES / "pipeline.sh"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "usage:" in done.stderr and "VOLUME VOLUME" in done.stderr
    assert tools() == {}


# --- examples/Makefile and examples/fsl.mk -----------------------------------------------------


def project(folder: Path) -> Path:
    """A user's project: the example Makefile as its Makefile, two volumes in data/."""
    folder.mkdir()
    shutil.copy(EXAMPLES / "Makefile", folder / "Makefile")
    demo_volumes(folder / "data")
    return folder


def test_makefile_after_make_clean_costs_hits_not_runs(
    tools: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nibabel as nib

    require_tool("make")
    monkeypatch.delenv("IMCACHE_BASE_DIR")  # the Makefile's own default: .cache next to it
    folder = project(tmp_path / "project")
    targets = [folder / "merged.nii.gz", folder / "mean.nii.gz"]

    first = ok("make", "-C", folder)
    assert tools() == {"mrcat": 1, "mrmath": 1}
    assert len(said(first.stderr, ": running ")) == 2
    assert all(target.is_file() for target in targets)
    assert (folder / ".cache" / "imcache_mem" / "mrtrix3.MRMath").is_dir()

    ok("make", "-C", folder, "clean")
    assert not any(target.exists() for target in targets)
    again = ok("make", "-C", folder)
    assert tools() == {"mrcat": 1, "mrmath": 1}  # hits: no tool ran
    assert len(said(again.stderr, "collecting precomputed outputs")) == 2
    assert nib.load(targets[1]).shape == (128, 96, 24)

    # Up to date: the exported targets are newer than what they are made from.
    assert subprocess.run(["make", "-q", "-C", folder], capture_output=True).returncode == 0
    assert "Nothing to be done" in ok("make", "-C", folder).stdout
    assert targets[1].stat().st_mtime >= targets[0].stat().st_mtime


def test_makefile_remakes_its_targets_when_an_input_changes(
    tools: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A changed input's new outputs replace the old targets (which stay in the cache)."""
    import nibabel as nib
    import numpy as np

    require_tool("make")
    monkeypatch.delenv("IMCACHE_BASE_DIR")
    folder = project(tmp_path / "project")
    mean = folder / "mean.nii.gz"
    ok("make", "-C", folder)
    before = np.asarray(nib.load(mean).dataobj).copy()

    vol0, vol1 = folder / "data" / "vol0.nii.gz", folder / "data" / "vol1.nii.gz"
    vol0.write_bytes(vol1.read_bytes())  # both volumes the same now: the mean is vol1
    os.utime(vol0, (time.time() + 2, time.time() + 2))  # surely newer than the targets
    ok("make", "-C", folder)

    assert tools() == {"mrcat": 2, "mrmath": 2}
    after = np.asarray(nib.load(mean).dataobj)
    assert np.allclose(after, np.asarray(nib.load(vol1).dataobj))
    assert not np.allclose(after, before)


def test_fsl_makefile_lines_render_with_dry_run(tools: Calls, tmp_path: Path) -> None:
    """FSL cannot be installed here: make prints fsl.mk's commands, imcache plans each one."""
    require_tool("make")
    folder = project(tmp_path / "project")
    for name in ("T1.nii.gz", "brain.nii.gz", "template.nii.gz"):  # brain: as bet would write
        shutil.copy(folder / "data" / "vol0.nii.gz", folder / name)
    printed = ok(
        "make", "-nB", "-C", folder, "-f", EXAMPLES / "fsl.mk", "T1=T1.nii.gz",
        "REFERENCE=template.nii.gz",
    ).stdout  # fmt: skip
    lines = printed.replace("\\\n", " ").splitlines()
    commands = [shlex.split(line) for line in lines if line.startswith("imcache ")]
    assert [command[:3] for command in commands] == [
        ["imcache", "run", "fsl.BET"],
        ["imcache", "run", "fsl.FLIRT"],
    ]
    argv = {}
    for command in commands:
        plan = ok(*command, "--dry-run", cwd=folder).stdout
        assert "would:     miss (would run)" in plan
        tool = {"fsl.BET": "bet", "fsl.FLIRT": "flirt"}[command[2]]
        if shutil.which(tool) is None:
            assert f"tool:      {tool} is not on PATH: a real run would fail" in plan
        argv[tool] = next(line for line in plan.splitlines() if line.startswith("argv:"))
    assert argv["bet"].endswith(f"bet {folder}/T1.nii.gz brain.nii.gz -f 0.50 -m")
    assert "-ref " + str(folder / "template.nii.gz") in argv["flirt"]
    assert argv["flirt"].endswith("-out brain_mni.nii.gz -omat brain_mni.mat -dof 12")
    assert tools() == {}


# --- examples/ci/github-actions.yml ------------------------------------------------------------


def workflow(path: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The job's env and its steps, read from the workflow's restricted shape: `- ` items of
    `key: value` lines, a `with:` mapping, `run: |` blocks (no YAML library needed)."""
    env: dict[str, str] = {}
    steps: list[dict[str, Any]] = []
    block: list[str] | None = None
    block_indent = 0
    section = ""
    for raw in path.read_text().splitlines():
        text = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if block is not None and (not text or indent > block_indent):
            block.append(raw[block_indent + 2 :])
            continue
        block = None
        if not text or text.startswith("#"):
            continue
        if text.startswith("- "):
            steps.append({})
            text, indent = text[2:], indent + 2
        key, _, value = text.partition(":")
        value = value.strip()
        if indent == 4 and not value:
            section = key
        elif section == "env" and indent == 6:
            env[key] = value
        elif section == "steps" and key == "run" and value == "|":
            block, block_indent = [], indent
            steps[-1]["run"] = block
        elif section == "steps" and key == "with":
            steps[-1]["with"] = {}
        elif section == "steps" and indent > 6 and "with" in steps[-1]:
            steps[-1]["with"][key] = value.strip('"')  # a quoted scalar: YAML's string
        elif section == "steps":
            steps[-1][key] = value
    for step in steps:
        if "run" in step:
            step["run"] = "\n".join(step["run"]).strip() + "\n"
    return env, steps


def test_workflow_has_the_steps_the_jobs_below_run() -> None:
    env, steps = workflow(WORKFLOW)
    assert env == {"IMCACHE_BASE_DIR": ".cache", "IMCACHE_SOURCE": "./tools/imcache"}
    assert [s.get("uses", s.get("name")) for s in steps] == [
        "actions/checkout@v4",
        "actions/setup-python@v5",
        "Install MRtrix3 and imcache",
        "actions/cache/restore@v4",
        "Start a session",
        "Pipeline",
        "Drop the entries this run did not use",
        "actions/cache/save@v4",
    ]
    assert steps[4]["run"] == "imcache session start\n"
    assert steps[6]["run"].startswith("imcache clear --previous\n")
    assert steps[3]["with"]["path"] == steps[7]["with"]["path"] == ".cache/imcache_mem"


def test_workflow_reader_agrees_with_a_yaml_parser() -> None:
    """The reader above against PyYAML: this venv's, else Debian's python3-yaml."""
    job = yaml_job(WORKFLOW)
    env, steps = workflow(WORKFLOW)
    assert job["env"] == env
    assert [s.get("run", "") for s in job["steps"]] == [s.get("run", "") for s in steps]
    assert [s.get("with") for s in job["steps"]] == [s.get("with") for s in steps]


def yaml_job(path: Path) -> dict[str, Any]:
    load = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    for python in (sys.executable, "/usr/bin/python3"):
        found = subprocess.run([python, "-c", load, path], capture_output=True, text=True)
        if found.returncode == 0:
            job: dict[str, Any] = json.loads(found.stdout)["jobs"]["pipeline"]
            return job
    pytest.skip("no PyYAML here (not a test dependency); the reader's own test still runs")


def run_job(
    steps: list[dict[str, Any]], env: dict[str, str], workspace: Path, saved: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    """One CI job: a fresh checkout, the cache folder restored from `saved` and saved back."""
    results = {}
    for step in steps:
        uses = step.get("uses", "")
        cache = workspace / step.get("with", {}).get("path", "")
        if uses.startswith("actions/checkout@"):
            shutil.rmtree(workspace, ignore_errors=True)
            project(workspace)
        elif uses.startswith("actions/cache/restore@"):
            if saved.exists():
                shutil.copytree(saved, cache, symlinks=True)
        elif uses.startswith("actions/cache/save@"):
            shutil.rmtree(saved, ignore_errors=True)
            shutil.copytree(cache, saved, symlinks=True)
        elif uses.startswith("actions/setup-python@"):
            continue  # the Python that runs this test stands in for it
        else:
            assert "run" in step, f"a step the test cannot stand in for: {step}"
            shell = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]]
            results[step["name"]] = ok(*shell, cwd=workspace, env=env)
    return results


def test_ci_workflow_second_job_hits_and_prunes_what_it_no_longer_used(
    tools: Calls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("make")
    job_env, steps = workflow(WORKFLOW)
    monkeypatch.delenv("IMCACHE_BASE_DIR")
    env = {**os.environ, **job_env}
    workspace, saved = tmp_path / "workspace", tmp_path / "saved" / "imcache_mem"

    first = run_job(steps, env, workspace, saved)
    assert tools() == {"mrcat": 1, "mrmath": 1}
    assert len(said(first["Pipeline"].stderr, ": running ")) == 2
    old = entries(saved)
    assert sorted(old) == ["mrtrix3.MRCat", "mrtrix3.MRMath"]

    # The next commit takes the maximum over time instead of the mean.
    second = run_job(steps, {**env, "STAT": "max"}, workspace, saved)
    assert tools() == {"mrcat": 1, "mrmath": 2}  # the merge was a hit
    hits = said(second["Pipeline"].stderr, "collecting precomputed outputs")
    assert [line.split(":")[1].strip() for line in hits] == ["mrtrix3.MRCat"]
    cleared = second["Drop the entries this run did not use"].stdout
    assert f"removed mrtrix3.MRMath {old['mrtrix3.MRMath'][:12]}" in cleared
    new = entries(saved)
    assert new["mrtrix3.MRCat"] == old["mrtrix3.MRCat"]
    assert new["mrtrix3.MRMath"] != old["mrtrix3.MRMath"]  # the max's entry, the mean's gone
    assert (workspace / "max.nii.gz").is_file()


def entries(saved: Path) -> dict[str, str]:
    """Interface -> key of each entry of a saved cache folder (one entry per interface here)."""
    listed = json.loads(ok("imcache", "--base-dir", saved.parent, "ls", "--json").stdout)
    found = {row["interface"]: row["key"] for row in listed}
    assert len(found) == len(listed), f"two entries of one interface: {listed}"
    return found
