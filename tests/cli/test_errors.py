"""Bad invocations of `imcache run`: one clear line on stderr, the right exit code, nothing run.

Each case names the culprit in its message, never shows a traceback, and leaves the cache root
without any entry. The small definitions of the user catalogue run `true` or a program that does
not exist, so no case depends on a neuroimaging tool being installed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imcache.cli.main import cli

MISSING_TOOL = "imcache-test-no-such-program"


def _input(input_id: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": input_id,
        "name": input_id,
        "type": "String",
        "optional": True,
        "value-key": f"[{input_id.upper()}]",
    }
    spec.update(extra)
    return spec


def _definition(
    inputs: list[dict[str, Any]], groups: list[dict[str, Any]] | None = None, tool: str = "true"
) -> dict[str, Any]:
    keys = " ".join(spec["value-key"] for spec in inputs)
    data: dict[str, Any] = {
        "name": tool,
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "a test definition",
        "command-line": f"{tool} {keys}",
        "inputs": inputs,
        "output-files": [],
    }
    if groups is not None:
        data["groups"] = groups
    return data


def _group(kind: str, *members: str) -> dict[str, Any]:
    return {"id": f"{kind}_group", "name": kind, "members": list(members), kind: True}


DEFINITIONS: dict[str, dict[str, Any]] = {
    "Switch": _definition(
        [
            _input("verbose", type="Flag", **{"command-line-flag": "-v"}),
            _input("label"),
        ]
    ),
    "Exclusive": _definition(
        [_input("left"), _input("right")], [_group("mutually-exclusive", "left", "right")]
    ),
    "OneOf": _definition(
        [_input("left"), _input("right")], [_group("one-is-required", "left", "right")]
    ),
    "Together": _definition(
        [_input("left"), _input("right")], [_group("all-or-none", "left", "right")]
    ),
    "Relations": _definition(
        [
            _input("mask", **{"requires-inputs": ["reference"]}),
            _input("reference"),
            _input("fast", **{"disables-inputs": ["precise"]}),
            _input("precise"),
        ]
    ),
    "Missing": _definition([_input("label")], tool=MISSING_TOOL),
    "Named": {
        **_definition([_input("out", optional=False)]),
        "output-files": [{"id": "result", "name": "result", "path-template": "[OUT]"}],
    },
}


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """A user catalogue: `test.<Name>` for each definition above, plus a broken one."""
    folder = tmp_path / "catalogue"
    package = folder / "test"
    package.mkdir(parents=True)
    for name, data in DEFINITIONS.items():
        (package / f"{name}.json").write_text(json.dumps(data, indent=2))
    (package / "Broken.json").write_text('{"name": "true", "command-line": "true [X]",\n  oops\n')
    return folder


@pytest.fixture
def images(isolated: Path) -> Path:
    """Input files for MRCat; their content does not matter since nothing may run."""
    for name in ("a.nii", "b.nii"):
        (isolated / name).write_bytes(b"not really an image\n")
    return isolated


@dataclass(frozen=True)
class Case:
    args: list[str]
    code: int
    says: list[str]
    catalogue: bool = False
    # a setup step that returns extra words to put before `run` (global options)
    setup: Callable[[Path], list[str]] | None = field(default=None)


def _under_a_file(tmp_path: Path) -> list[str]:
    blocker = tmp_path / "a-regular-file"
    blocker.write_text("not a folder\n")
    return ["--base-dir", str(blocker / "base")]


MRCAT = ["run", "mrtrix3.MRCat"]
FILES = ["--in-files", "a.nii", "b.nii"]

CASES: dict[str, Case] = {
    "unknown interface": Case(
        ["run", "mrtrix3.MRCatt", *FILES], 2, ["'mrtrix3.MRCatt'", "did you mean mrtrix3.MRCat"]
    ),
    "malformed interface name": Case(["run", "mrtrix3/MRCat", *FILES], 2, ["'mrtrix3/MRCat'"]),
    "interface name without a package": Case(["run", "MRCat", *FILES], 2, ["'MRCat'"]),
    "unknown option": Case(
        [*MRCAT, "--in-filez", "a.nii"], 2, ["--in-filez", "did you mean --in-files"]
    ),
    "missing required input": Case([*MRCAT, "--axis", "3"], 2, ["--in-files", "required"]),
    "list input without a value": Case([*MRCAT, "--in-files", "--axis", "3"], 2, ["--in-files"]),
    "missing input file": Case(
        [*MRCAT, "--in-files", "a.nii", "nothere.nii"], 2, ["--in-files", "nothere.nii"]
    ),
    "bad type": Case([*MRCAT, *FILES, "--axis", "abc"], 2, ["--axis", "'abc'"]),
    "integer given a fraction": Case([*MRCAT, *FILES, "--axis", "1.5"], 2, ["--axis", "1.5"]),
    "value outside choices": Case(
        [*MRCAT, *FILES, "--datatype", "float99"], 2, ["--datatype", "float99"]
    ),
    "value outside range": Case([*MRCAT, *FILES, "--axis", "-1"], 2, ["--axis", "-1", ">= 0"]),
    "scalar given twice": Case(
        [*MRCAT, *FILES, "--axis", "1", "--axis", "2"], 2, ["--axis", "twice"]
    ),
    "scalar given two values": Case([*MRCAT, *FILES, "--axis", "1", "2"], 2, ["'2'"]),
    "switch given a value": Case(
        ["run", "test.Switch", "--verbose=yes"], 2, ["--verbose", "switch"], catalogue=True
    ),
    "switch given twice": Case(
        ["run", "test.Switch", "--verbose", "--verbose"], 2, ["--verbose", "twice"], catalogue=True
    ),
    "mutually exclusive": Case(
        ["run", "test.Exclusive", "--left", "x", "--right", "y"],
        2,
        ["--left", "--right", "only one"],
        catalogue=True,
    ),
    "one is required": Case(
        ["run", "test.OneOf"], 2, ["--left", "--right", "required"], catalogue=True
    ),
    "all or none": Case(
        ["run", "test.Together", "--left", "x"], 2, ["--left", "--right"], catalogue=True
    ),
    "requires inputs": Case(
        ["run", "test.Relations", "--mask", "m"],
        2,
        ["--mask", "requires", "--reference"],
        catalogue=True,
    ),
    "disables inputs": Case(
        ["run", "test.Relations", "--fast", "f", "--precise", "p"],
        2,
        ["--fast", "--precise"],
        catalogue=True,
    ),
    "tool not found": Case(
        ["run", "test.Missing", "--label", "x"], 1, [MISSING_TOOL, "test.Missing"], catalogue=True
    ),
    "unwritable cache": Case(
        ["run", "test.Switch", "--label", "x"],
        1,
        ["a-regular-file/base"],
        catalogue=True,
        setup=_under_a_file,
    ),
    "json with get": Case([*MRCAT, *FILES, "--json", "--get", "out_file"], 2, ["--json", "--get"]),
    "get of an unknown output": Case(
        ["run", "test.Switch", "--label", "x", "--get", "nosuch"], 2, ["'nosuch'"], catalogue=True
    ),
    "broken definition": Case(["run", "test.Broken"], 1, ["Broken.json", "JSON"], catalogue=True),
    "output climbing out": Case([*MRCAT, *FILES, "--out-file", "../x.nii"], 2, ["../x.nii"]),
    "absolute output": Case([*MRCAT, *FILES, "--out-file", "/tmp/x.nii"], 2, ["/tmp/x.nii"]),
    "output named like the record": Case(
        ["run", "test.Named", "--out", "imcache.json"], 2, ["imcache.json"], catalogue=True
    ),
    "missing interface name": Case(["run"], 2, ["NAME"]),
    "unexpected word": Case([*MRCAT, "stray", *FILES], 2, ["'stray'"]),
}


def _entries(cache_root: Path) -> list[Path]:
    """Anything inside an interface folder of the cache: entries, failed attempts, locks."""
    if not cache_root.is_dir():
        return []
    return sorted(cache_root.glob("*/*"))


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_invocation(
    case: Case, catalogue: Path, images: Path, cache_root: Path, tmp_path: Path
) -> None:
    words = case.setup(tmp_path) if case.setup else []
    if case.catalogue:
        words += ["--interfaces", str(catalogue)]
    result = CliRunner().invoke(cli, [*words, *case.args])

    everything = result.output + result.stdout + result.stderr
    assert "Traceback" not in everything
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.exit_code == case.code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("imcache: error:"), lines[0]
    for culprit in case.says:
        assert culprit in lines[0]
    assert result.stdout == ""
    assert _entries(cache_root) == [], "a bad invocation must not run or write anything"


def test_run_help_lists_the_interface() -> None:
    result = CliRunner().invoke(cli, ["run", "mrtrix3.MRCat", "--help"])
    assert result.exit_code == 0, result.stderr
    for word in ("--in-files", "--axis", "--datatype", "out_file", "mrcat"):
        assert word in result.stdout


def test_interfaces_lists_mrcat() -> None:
    result = CliRunner().invoke(cli, ["interfaces", "MRCat"])
    assert result.exit_code == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert names == ["mrtrix3.MRCat"]
