"""A minimal valid invocation of every NiWrap descriptor renders an argv through `plan_run`.

For each descriptor of the corpus that loads, the generator below writes the words of
`imcache run NAME ...` that give only what is required: every non-optional input without a
default, plus what groups and `requires-inputs` then ask for, each with a value of its type (an
existing file, a value inside the choices or bounds, `min-list-entries` items, the first variant
of a Styx sub-command with its own required inputs). `plan_run`, imcache's real planning path,
must turn them into an argv that starts with the tool's command. A second pass also gives every
Styx sub-command input, required or not. `pytest -s` on this file shows the tally.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shlex
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from boutiques.bosh import bosh

from imcache.core.errors import DefinitionError, UsageError
from imcache.core.interfaces.loader import load_interface
from imcache.core.interfaces.model import (
    Body,
    FileArg,
    InputSpec,
    Interface,
    Scalar,
    SubArg,
    Value,
)
from imcache.core.plan import Plan, RunRequest, plan_run
from tests.conftest import NIWRAP, imcache

# Measured when written: every descriptor that loads renders (1497 of 1497; with every Styx
# sub-command input given, 19 of 19, 70 sub-command values). The floors leave a margin for a
# corpus update, none for imcache.
MIN_RENDERED = 1490
MIN_RENDERED_WITH_SUBS = 18
MIN_SUB_VALUES = 65
INPUT_FILE = "input_file.nii.gz"
JsonValue = str | int | float | bool | dict[str, object] | list[object]


def _descriptors(root: Path) -> Iterator[tuple[str, Path]]:
    """(package.tool, path) for every `PACKAGE/VERSION/TOOL/boutiques.json`."""
    for path in sorted(root.rglob("boutiques.json")):
        parts = path.relative_to(root).parts
        yield f"{parts[0]}.{parts[-2]}", path


# --- the generator ------------------------------------------------------------------------------


def _number(spec: InputSpec) -> int | float:
    """1 when the input allows it, else the first allowed value near its bounds."""
    low, high = spec.minimum, spec.maximum
    candidates: list[float] = [1, 0]
    for bound in (low, high):
        if bound is not None:
            candidates += [bound, bound + 1, bound - 1, math.ceil(bound), math.floor(bound)]
    if low is not None and high is not None:
        candidates.append((low + high) / 2)
    for candidate in candidates:
        number = int(candidate) if float(candidate).is_integer() else candidate
        if not spec.number_problem(number):
            return number
    raise AssertionError(f"the generator finds no number for {spec.id}")


def _scalar(spec: InputSpec, input_file: str, subs: bool) -> JsonValue:
    if spec.choices is not None:
        return spec.choices[0]
    if spec.type == "File":
        return input_file
    if spec.type == "Number":
        return _number(spec)
    if spec.type == "Sub":
        variant = spec.variants[0]
        return {"@type": variant.id, **_required_values(variant, input_file, subs)}
    return "out"


def _value(spec: InputSpec, input_file: str, subs: bool) -> JsonValue:
    if spec.type == "Flag":
        return True
    if not spec.is_list:
        return _scalar(spec, input_file, subs)
    return [_scalar(spec, input_file, subs) for _ in range(max(1, spec.min_entries or 0))]


def _required_values(body: Body, input_file: str, subs: bool = False) -> dict[str, JsonValue]:
    """What the body needs: required inputs, one member of each one-is-required group, and
    whatever a chosen input requires, until nothing more is asked; with `subs`, also every
    Styx sub-command input, at every depth."""
    by_id = {spec.id: spec for spec in body.inputs}
    groups = {group.id: group for group in body.groups}
    wanted = [spec.id for spec in body.inputs if not spec.optional and spec.default is None]
    wanted += [g.members[0] for g in body.groups if g.one_is_required and g.members]
    wanted += [spec.id for spec in body.inputs if subs and spec.type == "Sub"]
    values: dict[str, JsonValue] = {}
    while wanted:
        input_id = wanted.pop(0)
        if input_id in values or input_id not in by_id:
            continue
        spec = by_id[input_id]
        values[input_id] = _value(spec, input_file, subs)
        wanted += [groups[ref].members[0] if ref in groups else ref for ref in spec.requires]
        wanted += spec.value_requires.get(str(values[input_id]), ())
        for group in body.groups:
            if group.all_or_none and input_id in group.members:
                wanted += group.members
    return values


def _words(body: Body, values: dict[str, JsonValue]) -> list[str]:
    """The words of `imcache run NAME ...` that give these values."""
    words: list[str] = []
    for spec in body.inputs:
        value = values.get(spec.id)
        if value is None:
            continue
        if spec.type == "Flag":
            words.append(spec.option)
        elif isinstance(value, list):
            words += [spec.option, *(_text(item) for item in value)]
        else:
            words.append(f"{spec.option}={_text(value)}")
    return words


def _text(value: object) -> str:
    return json.dumps(value) if isinstance(value, dict) else str(value)


def _has_sub_inputs(interface: Interface) -> bool:
    return any(spec.type == "Sub" for spec in interface.inputs)


# --- the tally ----------------------------------------------------------------------------------


@dataclass
class Outcomes:
    rendered: dict[str, Plan] = field(default_factory=dict)
    refused: dict[str, UsageError] = field(default_factory=dict)

    def report(self, title: str) -> list[str]:
        reasons = Counter(_reason(error) for error in self.refused.values())
        subs = sum(1 for plan in self.rendered.values() for _ in _sub_values(plan))
        return [
            f"{title}: {len(self.rendered)} rendered ({subs} sub-command values), "
            f"{len(self.refused)} refused",
            *(f"  {count:4d}  {reason}" for reason, count in reasons.most_common()),
        ]


@dataclass
class Tally:
    work: Path
    loaded: dict[str, str] = field(default_factory=dict)  # name -> descriptor path
    not_loaded: dict[str, DefinitionError] = field(default_factory=dict)  # path -> why
    minimal: Outcomes = field(default_factory=Outcomes)
    with_subs: Outcomes = field(default_factory=Outcomes)

    def report(self) -> str:
        return "\n".join(
            [
                f"NiWrap corpus: {len(self.loaded)} loaded, {len(self.not_loaded)} refused",
                *self.minimal.report("minimal invocations"),
                *self.with_subs.report("with every Styx sub-command input given"),
            ]
        )


def _reason(error: UsageError) -> str:
    """The kind of refusal, without the names that differ from one tool to the next."""
    text = re.sub(r"^[\w.-]+: ", "", error.message)
    text = re.sub(r"--[\w.-]+", "--OPTION", text)
    return re.sub(r"'[^']*'|\[[^]]*\]|\d+", "…", text)


@pytest.fixture(scope="module")
def tally(tmp_path_factory: pytest.TempPathFactory) -> Tally:
    if not NIWRAP.is_dir():
        pytest.skip(f"the NiWrap corpus is not at {NIWRAP}")
    result = Tally(work=tmp_path_factory.mktemp("niwrap-invocations"))
    (result.work / INPUT_FILE).write_bytes(b"\0" * 64)  # one small file for every File input
    for name, path in _descriptors(NIWRAP):
        try:
            interface = load_interface(str(path), name)
        except DefinitionError as error:
            result.not_loaded[str(path)] = error
            continue
        result.loaded[name] = str(path)
        _plan(result, result.minimal, interface, subs=False)
        if _has_sub_inputs(interface):
            _plan(result, result.with_subs, interface, subs=True)
    return result


def _plan(tally: Tally, into: Outcomes, interface: Interface, subs: bool) -> None:
    request = RunRequest(
        interface=interface.name,
        words=_words(interface.body, _required_values(interface.body, INPUT_FILE, subs)),
        base_dir=str(tally.work / "base"),
        cwd=str(tally.work),
        env={"PATH": os.environ.get("PATH", os.defpath)},
        catalogues=[str(NIWRAP)],
    )
    try:
        into.rendered[interface.name] = plan_run(request)
    except UsageError as error:
        into.refused[interface.name] = error


def test_minimal_invocations_render(tally: Tally) -> None:
    print("\n" + tally.report())
    assert len(tally.loaded) == len(tally.minimal.rendered) + len(tally.minimal.refused)
    assert len(tally.minimal.rendered) >= MIN_RENDERED, tally.report()
    assert len(tally.with_subs.rendered) >= MIN_RENDERED_WITH_SUBS, tally.report()


def test_argv_starts_with_the_tool_command(tally: Tally) -> None:
    for outcomes in (tally.minimal, tally.with_subs):
        for name, plan in outcomes.rendered.items():
            assert plan.interface.source == tally.loaded[name]
            command = plan.interface.body.command_line.split()[0]
            assert plan.argv[0] == command, (name, plan.argv)


def test_no_value_key_is_left_in_the_argv(tally: Tally) -> None:
    """Every `[KEY]` of the template, its sub-commands' included, is filled in or dropped.

    Flags are text: ants ImageSetStatistics spells its flags as its value-keys
    (`"command-line-flag": "[ROI]"`), and bosh too passes them as they are."""
    for outcomes in (tally.minimal, tally.with_subs):
        for name, plan in outcomes.rendered.items():
            keys, flags = _keys_and_flags(plan.interface.body)
            left = [w for w in plan.argv if w not in flags and any(key in w for key in keys)]
            assert not left, (name, left)


def _keys_and_flags(body: Body) -> tuple[set[str], set[str]]:
    keys = {spec.value_key for spec in body.inputs}
    keys |= {out.value_key for out in body.outputs if out.value_key}
    flags = {spec.flag for spec in body.inputs if spec.flag}
    for spec in body.inputs:
        for variant in spec.variants:
            more_keys, more_flags = _keys_and_flags(variant)
            keys, flags = keys | more_keys, flags | more_flags
    return keys, flags


def test_given_files_reach_the_argv_as_absolute_paths(tally: Tally) -> None:
    input_path = str(tally.work / INPUT_FILE)
    checked = 0
    for name, plan in tally.minimal.rendered.items():
        for spec in plan.interface.inputs:
            items = _items(plan.values.get(spec.id))
            if items and isinstance(items[0], FileArg):
                assert any(input_path in word for word in plan.argv), (name, spec.id, plan.argv)
                checked += 1
    assert checked > 1000, checked


def test_styx_sub_commands_render_their_own_command_line(tally: Tally) -> None:
    """A sub-command given as its first variant brings that variant's own literal words."""
    checked = 0
    for name, plan in tally.with_subs.rendered.items():
        for spec, variant in _sub_values(plan):
            literal = [word for word in variant.command_line.split() if "[" not in word]
            assert all(word in plan.argv for word in literal), (name, spec.id, plan.argv)
            checked += 1
    assert checked >= MIN_SUB_VALUES, checked


def _sub_values(plan: Plan) -> Iterator[tuple[InputSpec, Body]]:
    """Every sub-command value of the plan, at any depth, with the variant it chose."""
    pending: list[tuple[Body, dict[str, Value]]] = [(plan.interface.body, plan.values)]
    while pending:
        body, values = pending.pop()
        for spec in body.inputs:
            for item in _items(values.get(spec.id)):
                if isinstance(item, SubArg):
                    variant = next(v for v in spec.variants if v.id == item.variant)
                    pending.append((variant, item.values))
                    yield spec, variant


def _items(value: Value | None) -> list[Scalar]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --- the same invocations through bosh ------------------------------------------------------------
# Over the whole corpus (1478 descriptors without sub-commands, 90 s of bosh) this agreed on
# 1444 argv; 32 bosh refused (an empty list), 2 differed by bosh's quirk below. A sample keeps
# the suite fast.

BOSH_SAMPLE = 40
NIWRAP_KEYS = ("resolve-parent", "mutable", "media-types")


def _for_bosh(path: Path, folder: Path) -> Path:
    """The descriptor as `bosh validate` takes it, its command line untouched: NiWrap's own keys
    and empty lists out, Flags optional, output ids apart from input ids (NiWrap shares them)."""
    data = json.loads(path.read_text())
    data.update({"schema-version": "0.5", "tool-version": "1", "description": "."})
    for key in [
        "stdout-output",
        "stderr-output",
        "custom",
        *(k for k, v in data.items() if v == []),
    ]:
        data.pop(key, None)
    for item in [*data.get("inputs", []), *data.get("output-files", [])]:
        for key in NIWRAP_KEYS:
            item.pop(key, None)
        if item.get("type") == "Flag":
            item["optional"] = True
    for output in data.get("output-files", []):
        output["id"] += "_output"
    fixed = folder / f"{path.parent.name}.json"
    fixed.write_text(json.dumps(data))
    return fixed


def test_minimal_invocations_match_bosh_on_a_sample(tally: Tally, tmp_path: Path) -> None:
    names = [n for n, plan in tally.minimal.rendered.items() if not _has_sub_inputs(plan.interface)]
    sample = names[:: max(1, len(names) // BOSH_SAMPLE)]
    quirks = []
    for name in sample:
        plan = tally.minimal.rendered[name]
        values = _required_values(plan.interface.body, str(tally.work / INPUT_FILE))
        given = tmp_path / f"{name}.invocation.json"
        given.write_text(json.dumps(values))
        descriptor = _for_bosh(Path(tally.loaded[name]), tmp_path)
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                line = bosh(["exec", "simulate", str(descriptor), "-i", str(given)]).shell_command
        except Exception as exc:  # bosh's own validator refuses it (an id used twice): no oracle
            assert "non-unique" in str(exc), (name, exc)
            continue
        if shlex.split(line) != plan.argv:
            # bosh drops the space before an absent key even when another key is glued to it:
            # `3dTcat [RLT][IN_FILES]` gives `3dTcat/data/a.nii`.
            assert "][" in plan.interface.body.command_line, (name, line, plan.argv)
            quirks.append(name)
    assert len(sample) >= BOSH_SAMPLE and len(quirks) <= 2, (len(sample), quirks)


# --- imcache validate over corpus files -----------------------------------------------------------


def test_validate_names_the_file_of_each_problem(tally: Tally) -> None:
    refused = sorted(tally.not_loaded)[:4]
    loaded = sorted(tally.loaded.values())[:3]
    missing = str(tally.work / "no-such" / "boutiques.json")
    result = imcache("validate", *loaded, *refused, missing)
    assert result.exit_code == 1, result.output
    problems = [line for line in result.stdout.splitlines() if line.startswith("FAIL ")]
    assert [line.split(": ", 1)[0] for line in problems] == [
        f"FAIL {path}" for path in [*refused, missing]
    ]
    for line, path in zip(problems, refused, strict=False):
        assert line == f"FAIL {tally.not_loaded[path].message}"
    assert [line for line in result.stdout.splitlines() if line.startswith("ok ")] == [
        f"ok   {path}" for path in loaded
    ]
    valid = f"{len(loaded)} of {len(loaded) + len(refused) + 1} definitions are valid"
    assert valid in result.stderr


def test_validate_of_loaded_corpus_files_exits_0(tally: Tally) -> None:
    loaded = sorted(tally.loaded.values())[-5:]
    result = imcache("validate", "--quiet", *loaded)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"{len(loaded)} of {len(loaded)} definitions are valid" in result.stderr
