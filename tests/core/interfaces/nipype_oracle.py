"""nipype as the oracle for the built-in FSL catalogue (FSL itself cannot be installed here).

A `Case` names a built-in interface (`fsl.BET`), nipype's inputs for it, and the files to create.
`check_case` builds the same job through nipype's class of that name and through imcache's
`plan_run`, and compares:

- the argv with nipype's `cmdline`, word for word. The only normalisation: nipype writes a
  derived output as an absolute path in its working folder, imcache as a bare name in the entry
  folder (where the tool runs), so `<cwd>/` is cut from nipype's words. Inputs live in a `data`
  folder beside it and stay absolute on both sides.
- every output that both sides name: nipype's `_list_outputs()` basename against imcache's
  planned path (the output is shown under nipype's output name: `output-names`).

Values in `inputs` that are names in `files` become those files' absolute paths (in lists and
tuples too). Images are small NIfTI volumes; a name ending in `.mat` or `.txt` is a text file.
"""

from __future__ import annotations

import json
import os
import shlex
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from imcache.core.plan import Plan, RunRequest, plan_run
from tests.conftest import REPO, run_ok

IDENTITY = "1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n"


@dataclass(frozen=True)
class Case:
    id: str
    interface: str  # nipype's class name, also imcache's fsl.<Name>
    inputs: Mapping[str, Any]
    files: tuple[str, ...] = ()
    output_type: str = "NIFTI_GZ"
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # 4D inputs etc.


def make_files(case: Case, data: Path, make_nifti: Callable[..., Path]) -> dict[str, str]:
    """Create the case's files in `data`; file name -> absolute path."""
    paths = {}
    for seed, name in enumerate(case.files):
        if name.endswith((".mat", ".txt")):
            path = data / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(IDENTITY)
        else:
            shape = case.shapes.get(name, (4, 4, 3))
            path = make_nifti(name, seed=seed, shape=shape, folder=data)
        paths[name] = str(path.resolve())
    return paths


def with_paths(value: Any, paths: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return paths.get(value, value)
    if isinstance(value, list | tuple):
        return type(value)(with_paths(item, paths) for item in value)
    return value


def nipype_interface(case: Case, paths: Mapping[str, str]) -> Any:
    from nipype.interfaces import fsl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "FSL not found", "FSLOUTPUTTYPE" chatter
        interface = getattr(fsl, case.interface)()
        for name, value in case.inputs.items():
            setattr(interface.inputs, name, with_paths(value, paths))
    return interface


def imcache_words(case: Case, paths: Mapping[str, str]) -> list[str]:
    """nipype's inputs as `imcache run` options: `--in-file X`, a switch for True, lists spread."""
    words: list[str] = []
    for name, value in case.inputs.items():
        option = "--" + name.replace("_", "-")
        value = with_paths(value, paths)
        if value is True:
            words.append(option)
        elif value is False:
            continue
        elif isinstance(value, list | tuple):
            words += [option, *(_word(item) for item in value)]
        else:
            words += [option, _word(value)]
    return words


def _word(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def plan(case: Case, words: list[str], cwd: Path, base: Path) -> Plan:
    return plan_run(
        RunRequest(
            interface=f"fsl.{case.interface}",
            words=words,
            base_dir=str(base),
            cwd=str(cwd),
            env=dict(os.environ),
        )
    )


def nipype_argv(interface: Any, cwd: Path) -> list[str]:
    prefix = f"{cwd}{os.sep}"
    return [word.replace(prefix, "") for word in shlex.split(interface.cmdline)]


def nipype_outputs(interface: Any) -> dict[str, str]:
    """nipype's named outputs that are set, as basenames."""
    found = {}
    for name, value in interface._list_outputs().items():
        if isinstance(value, str) and value:
            found[name] = os.path.basename(value)
    return found


def check_case(
    case: Case,
    cwd: Path,
    tmp_path: Path,
    make_nifti: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Assert that imcache renders nipype's argv and names nipype's outputs for this case."""
    monkeypatch.setenv("FSLOUTPUTTYPE", case.output_type)  # nipype and imcache both read it
    paths = make_files(case, tmp_path / "data", make_nifti)
    interface = nipype_interface(case, paths)
    planned = plan(case, imcache_words(case, paths), cwd, tmp_path / "base")

    assert planned.argv == nipype_argv(interface, cwd)
    ours = {out.spec.label: out.path for out in planned.outputs}
    theirs = nipype_outputs(interface)
    shared = sorted(set(ours) & set(theirs))
    assert shared, f"no output named alike: imcache {sorted(ours)}, nipype {sorted(theirs)}"
    assert {name: ours[name] for name in shared} == {name: theirs[name] for name in shared}


FSL = REPO / "src/imcache/core/interfaces/catalogue/fsl"


def check_help(name: str) -> None:
    """`imcache run fsl.NAME --help` shows every input as an option and every output by name,
    and the definition says which nipype class it follows."""
    definition = json.loads((FSL / f"{name}.json").read_text())
    assert f"(nipype: fsl.{name})" in definition["description"]

    shown = run_ok("run", f"fsl.{name}", "--help").stdout

    for spec in definition["inputs"]:
        assert f"--{spec['id'].replace('_', '-')} " in shown, spec["id"]
    names = definition.get("custom", {}).get("imcache", {}).get("output-names", {})
    outputs = [names.get(out["id"], out["id"]) for out in definition.get("output-files", [])]
    outputs += [definition["stdout-output"]["id"]] if "stdout-output" in definition else []
    for output in outputs:
        assert f"  {output}  " in shown, output
