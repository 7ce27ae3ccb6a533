"""imcache's argv against `bosh exec simulate`, for every example the boutiques package ships with
an invocation.

A case is a descriptor of boutiques' own examples and tests with one invocation: each invocation
JSON in the descriptor's folder whose keys are all inputs of that descriptor, and each
`tests[].invocation` of the descriptor itself. Both sides get the same invocation, its File
values made absolute and existing (imcache passes a File as its absolute path and checks that it
exists; bosh passes what it is given). bosh's command line is a shell line: its words are what
`shlex.split` gives. imcache's argv (from `plan_run`, no shell) must equal them, or imcache must
refuse the case for a deliberate reason listed below. Where bosh refuses the case, imcache must
refuse it too. `pytest -s` on this file prints the tally.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boutiques
import pytest
from boutiques.__version__ import VERSION
from boutiques.bosh import BoutiquesError, bosh
from boutiques.localExec import ExecutorError
from jsonschema import ValidationError

from imcache.core.errors import DefinitionError, ImcacheError
from imcache.core.interfaces.loader import load_interface
from imcache.core.plan import Plan, RunRequest, plan_run

BOUTIQUES = Path(boutiques.__file__).parent
FOLDERS = (BOUTIQUES / "schema" / "examples", BOUTIQUES / "tests")
BOSH_REFUSALS = (ValidationError, ExecutorError, BoutiquesError)

# Why imcache refuses what bosh runs: each refusal must match one of these.
DELIBERATE = {
    "conditional-path-template": (
        "conditional-path-template evaluates Python expressions from the definition; "
        "imcache never runs code from a definition"
    ),
    "does not appear in the command-line": (
        "an input whose value-key only feeds an environment variable; imcache sets only fixed "
        "environment variables and refuses a value-key that no template uses"
    ),
}
# What the shell reads in a command-line template (outside its value-keys). imcache never uses
# a shell, so such a template cannot mean to imcache what it means to bosh.
SHELL_SYNTAX = re.compile(r"[<>|&;$`'\"\\*?]")
MIN_CONFORM = 15  # measured: 15 when written


@dataclass(frozen=True)
class Case:
    descriptor: Path
    source: str  # the invocation file's name, or `tests[N]`
    invocation: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.descriptor.relative_to(BOUTIQUES)}:{self.source}"


def _read(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return None  # boutiques ships broken JSON on purpose (tests of its validator)


def _cases() -> list[Case]:
    descriptors: list[tuple[Path, dict[str, Any]]] = []
    invocations: dict[Path, list[tuple[Path, dict[str, Any]]]] = {}
    for folder in FOLDERS:
        for path in sorted(folder.rglob("*.json")):
            data = _read(path)
            if isinstance(data, dict) and "command-line" in data:
                descriptors.append((path, data))
            elif isinstance(data, dict):
                invocations.setdefault(path.parent, []).append((path, data))
    cases = []
    for path, data in descriptors:
        inputs = {item.get("id") for item in data.get("inputs", []) if isinstance(item, dict)}
        for other, invocation in invocations.get(path.parent, []):
            if invocation and set(invocation) <= inputs:
                cases.append(Case(path, other.name, invocation))
        for index, test in enumerate(data.get("tests", [])):
            if isinstance(test, dict) and isinstance(test.get("invocation"), dict):
                cases.append(Case(path, f"tests[{index}]", test["invocation"]))
    return cases


CASES = _cases()


# --- the two sides ------------------------------------------------------------------------------


def _with_files(case: Case, folder: Path, work: Path) -> dict[str, Any]:
    """The invocation with each File value absolute and existing: a relative one under `work`,
    an absolute one moved under `folder/root` (nothing is written outside the test's folder)."""
    data = _read(case.descriptor)
    assert isinstance(data, dict)
    files = {item["id"] for item in data.get("inputs", []) if item.get("type") == "File"}
    invocation = dict(case.invocation)
    for input_id in files & set(invocation):
        value = invocation[input_id]
        items = value if isinstance(value, list) else [value]
        placed = []
        for item in items:
            path = folder / "root" / item.lstrip("/") if item.startswith("/") else work / item
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(item)
            placed.append(os.path.normpath(path))
        invocation[input_id] = placed if isinstance(value, list) else placed[0]
    return invocation


def _bosh_words(descriptor: Path, invocation: dict[str, Any], folder: Path) -> list[str]:
    """bosh's command line for the invocation, split as the shell splits it."""
    given = folder / f"invocation-{len(list(folder.glob('invocation-*')))}.json"
    given.write_text(json.dumps(invocation))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        line = bosh(["exec", "simulate", str(descriptor), "-i", str(given)]).shell_command
    assert isinstance(line, str)
    return shlex.split(line)


def _escaped_separators(descriptor: Path, folder: Path) -> Path:
    """The descriptor with the shell syntax in each list-separator escaped, its white space left.

    bosh quotes list items but not the separator, so the shell splits at a separator's white
    space (as imcache does: it reads a separator as template text) and reads its quotes, which
    `', !` leaves unbalanced: a line no shell can run. Escaped, bosh's line says what imcache
    means by such a separator."""
    data = _read(descriptor)
    assert isinstance(data, dict)
    for item in data.get("inputs", []):
        if "list-separator" in item:
            text = item["list-separator"]
            item["list-separator"] = re.sub(r"\S+", lambda m: shlex.quote(m.group()), text)
    fixed = folder / "escaped-separators.json"
    fixed.write_text(json.dumps(data))
    return fixed


def _imcache_plan(descriptor: Path, invocation: dict[str, Any], folder: Path) -> Plan:
    """imcache's plan through `plan_run`, the descriptor installed in a private catalogue."""
    catalogue = folder / "catalogue"
    (catalogue / "boutiques").mkdir(parents=True)
    (catalogue / "boutiques" / "tool.json").write_bytes(descriptor.read_bytes())
    interface = load_interface(str(catalogue / "boutiques" / "tool.json"), "boutiques.tool")
    words: list[str] = []
    for spec in interface.inputs:
        value = invocation.get(spec.id)
        if spec.type == "Flag" and value is True:
            words.append(spec.option)
        elif isinstance(value, list):
            words += [spec.option, *(str(item) for item in value)]
        elif value is not None and spec.type != "Flag":
            words.append(f"{spec.option}={value}")
    request = RunRequest(
        interface="boutiques.tool",
        words=words,
        base_dir=str(folder / "base"),
        cwd=os.getcwd(),
        env={"PATH": os.environ.get("PATH", os.defpath)},
        catalogues=[str(catalogue)],
    )
    return plan_run(request)


def _imcache_argv(descriptor: Path, invocation: dict[str, Any], folder: Path) -> list[str]:
    return _imcache_plan(descriptor, invocation, folder).argv


def _config_files_differ(plan: Plan, work: Path) -> str:
    """Where imcache's file-template text differs from the file bosh wrote, or ''."""
    for out in plan.outputs:
        if out.content is not None:
            written = work / out.path
            theirs = written.read_text() if written.is_file() else None
            if theirs != out.content:
                return f"{out.path}: bosh wrote {theirs!r}, imcache would write {out.content!r}"
    return ""


# --- judging one case ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    # conform, bosh-invalid-shell, refused, both-refuse, needs-shell; failures: differ, accepts
    kind: str
    detail: str = ""


# needs-shell: imcache ran a template that only a shell would read as bosh means it.
FAILURES = ("differ", "accepts", "needs-shell")
NEEDS_SHELL = "the command-line template has shell syntax (> && quotes), and imcache uses no shell"
INVALID_SHELL = (
    "bosh's line is not valid shell (a quote in a list-separator), so bosh cannot run it; "
    "imcache's argv equals bosh's once the separator's shell syntax is escaped"
)


def _judge(case: Case, folder: Path) -> Outcome:
    work = folder / "work"
    work.mkdir(parents=True)
    invocation = _with_files(case, folder, work)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)  # bosh writes configuration files into the current folder
        kind = "conform"
        try:
            expected = _bosh_words(case.descriptor, invocation, folder)
        except BOSH_REFUSALS as error:
            return _bosh_refuses(case, invocation, folder, error)
        except ValueError:  # no closing quotation: bosh's line is not valid shell
            kind = "bosh-invalid-shell"
            expected = _bosh_words(_escaped_separators(case.descriptor, folder), invocation, folder)
        try:
            planned = _imcache_plan(case.descriptor, invocation, folder)
        except ImcacheError as error:
            return _imcache_refuses(error, _needs_shell(case.descriptor))
        argv = planned.argv
        config_difference = _config_files_differ(planned, work)
    if _needs_shell(case.descriptor):
        return Outcome("needs-shell", f"{NEEDS_SHELL}; imcache renders {argv}")
    if argv != expected:
        return Outcome("differ", f"bosh {expected}\nimcache {argv}")
    if config_difference:
        return Outcome("differ", f"configuration file {config_difference}")
    return Outcome(kind, INVALID_SHELL if kind != "conform" else "")


def _bosh_refuses(
    case: Case, invocation: dict[str, Any], folder: Path, error: Exception
) -> Outcome:
    why = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    try:
        argv = _imcache_argv(case.descriptor, invocation, folder)
    except ImcacheError as refusal:
        problem = refusal.problem if isinstance(refusal, DefinitionError) else refusal.message
        return Outcome("both-refuse", f"bosh: {why[:90]} | imcache: {problem}")
    return Outcome("accepts", f"bosh refuses ({why}), imcache renders {argv}")


def _imcache_refuses(error: ImcacheError, needs_shell: bool) -> Outcome:
    problem = error.problem if isinstance(error, DefinitionError) else error.message
    field = f"{error.field}: " if isinstance(error, DefinitionError) else ""
    for pattern, why in DELIBERATE.items():
        if re.search(pattern, f"{field}{problem}"):
            return Outcome("refused", why)
    if needs_shell and field.endswith("command-line: ") and "shell syntax" in problem:
        return Outcome("refused", NEEDS_SHELL)
    return Outcome("differ", f"bosh runs it, imcache refuses: {error}")


def _needs_shell(descriptor: Path) -> bool:
    data = _read(descriptor)
    assert isinstance(data, dict)
    template = str(data["command-line"])
    for item in [*data.get("inputs", []), *data.get("output-files", [])]:
        if item.get("value-key"):
            template = template.replace(item["value-key"], "")
    return SHELL_SYNTAX.search(template) is not None


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Case], Outcome]:
    """Each case judged once per module, in its own folder, however many tests ask."""
    outcomes: dict[str, Outcome] = {}

    def judged(case: Case) -> Outcome:
        if case.id not in outcomes:
            outcomes[case.id] = _judge(case, tmp_path_factory.mktemp("case"))
        return outcomes[case.id]

    return judged


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case, judge: Callable[[Case], Outcome]) -> None:
    outcome = judge(case)
    assert outcome.kind not in FAILURES, f"{case.id}: {outcome.kind}: {outcome.detail}"


def test_tally(judge: Callable[[Case], Outcome]) -> None:
    outcomes = {case.id: judge(case) for case in CASES}
    kinds = Counter(outcome.kind for outcome in outcomes.values())
    lines = [
        f"boutiques {VERSION} examples: {len(CASES)} cases, "
        + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    ]
    for kind in ("bosh-invalid-shell", "refused", "both-refuse", "needs-shell", *FAILURES):
        reasons = Counter(o.detail for o in outcomes.values() if o.kind == kind)
        lines += [f"  {kind} {count:3d}  {why}" for why, count in reasons.most_common()]
    print("\n" + "\n".join(lines))
    assert not any(outcome.kind in FAILURES for outcome in outcomes.values()), "\n".join(lines)
    assert kinds["conform"] >= MIN_CONFORM, "\n".join(lines)


# --- Styx sub-commands: beyond Boutiques ---------------------------------------------------------
# bosh refuses an input whose type is an object (NiWrap's Styx sub-command). imcache renders the
# chosen variant's own command line in the input's place, so its argv must equal bosh's for the
# same descriptor with that variant written inline.

SIGMA = {"id": "sigma", "name": "sigma", "type": "Number", "value-key": "[SIGMA]"}
MODE = {
    "id": "mode",
    "name": "mode",
    "type": "String",
    "optional": True,
    "command-line-flag": "--mode",
    "command-line-flag-separator": "=",
    "value-key": "[MODE]",
}
FILE = {"id": "file", "name": "file", "type": "File", "value-key": "[FILE]"}
GAUSS = {
    "id": "gauss",
    "name": "gauss",
    "command-line": "-s [SIGMA] [MODE]",
    "inputs": [SIGMA, MODE],
}
INVERSE = {"id": "inverse", "name": "inverse", "command-line": "[[FILE],1]", "inputs": [FILE]}
SINGLE = {"id": "single", "name": "single", "command-line": "[FILE]", "inputs": [FILE]}
STYX_CASES: dict[str, tuple[Any, dict[str, str], dict[str, Any]]] = {
    "object-type": (GAUSS, {}, {"sigma": 2.5, "mode": "fast lane"}),
    "object-type-with-flag": (GAUSS, {"command-line-flag": "-k"}, {"sigma": 3}),
    "second-variant": ([SINGLE, INVERSE], {"command-line-flag": "-t"}, {"file": "affine.txt"}),
}


def _styx_descriptor(kind: object, more: dict[str, Any]) -> dict[str, Any]:
    sub = {"id": "sub", "name": "sub", "type": kind, "value-key": "[SUB]", **more}
    other = {"id": "label", "name": "label", "type": "String", "value-key": "[LABEL]"}
    return {
        "name": "tool",
        "description": "a Styx sub-command",
        "tool-version": "1",
        "schema-version": "0.5",
        "command-line": "tool [LABEL] [SUB] end",
        "inputs": [other, sub],
    }


def _inlined(descriptor: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """The same tool for bosh: the variant's command line and inputs in place of the input."""
    parent, sub = descriptor["inputs"]
    flag = sub.get("command-line-flag")
    text = f"{flag}{sub.get('command-line-flag-separator', ' ')}" if flag else ""
    line = descriptor["command-line"].replace(sub["value-key"], text + variant["command-line"])
    return {**descriptor, "command-line": line, "inputs": [parent, *variant["inputs"]]}


@pytest.mark.parametrize("name", sorted(STYX_CASES))
def test_styx_sub_command_matches_bosh_on_the_inlined_descriptor(
    name: str, tmp_path: Path, isolated: Path
) -> None:
    kind, more, values = STYX_CASES[name]
    variant = kind[-1] if isinstance(kind, list) else kind
    descriptor = _styx_descriptor(kind, more)
    folder = tmp_path / "case"
    folder.mkdir()
    styx, inline = folder / "styx.json", folder / "inline.json"
    styx.write_text(json.dumps(descriptor))
    inline.write_text(json.dumps(_inlined(descriptor, variant)))
    with pytest.raises(ValidationError), contextlib.redirect_stdout(io.StringIO()):
        bosh(["validate", str(styx)])  # an extension: Boutiques has no such type
    flat = _with_files(Case(inline, "", {"label": "a b", **values}), folder, isolated)
    sub_value = {"@type": variant["id"], **{key: flat[key] for key in values}}
    argv = _imcache_argv(styx, {"label": "a b", "sub": json.dumps(sub_value)}, folder)
    assert argv == _bosh_words(inline, flat, folder)  # bosh writes nothing here: cwd is isolated


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ([], "must be File, String, Number, Flag, or a Styx sub-command object"),
        ([1], "must be File, String, Number, Flag, or a Styx sub-command object"),
        ("Integer", "unknown type 'Integer'"),
        ({"name": "x", "command-line": "-x"}, "is required"),
        ({"id": "x", "command-lines": "-x"}, "unknown property"),
        ([SINGLE, SINGLE], "sub-command variants must have distinct ids"),
        ({"id": "x", "command-line": "-x [Y]"}, "[Y]"),
    ],
    ids=["empty-list", "not-objects", "unknown-scalar", "no-id", "typo", "same-ids", "stray-key"],
)
def test_malformed_sub_command_types_are_refused(
    kind: object, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / "styx.json"
    path.write_text(json.dumps(_styx_descriptor(kind, {})))
    with pytest.raises(DefinitionError) as refused:
        load_interface(str(path), "test.styx")
    assert refused.value.source == str(path)
    assert refused.value.field.startswith("inputs[1]")
    assert problem in refused.value.problem
