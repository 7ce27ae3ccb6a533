"""Properties of the two places where hostile text first meets imcache (promise 6).

(a) Loading a definition: whatever a `.json` file holds (arbitrary JSON, a built-in definition
    with keys dropped, types changed or weird strings put in, or bytes cut and flipped), the
    loader either returns an interface or raises an `ImcacheError`, which the CLI turns into one
    line and exit 1. Any other exception would be a crash (exit 3).

(b) Rendering the argv: for the built-in `mrtrix3.MRCat` and a small definition with String,
    Number, Flag and list inputs, any words after `imcache run NAME` go through `plan_run` (the
    path `imcache run --dry-run` takes) and either raise an `ImcacheError` or give an argv that
    is exactly the one expected: each user value one whole word, never split and never joined
    with another value, except where the template glues it (`--name=VALUE`, `-oVALUE`, a list
    joined with `list-separator`). File values are their absolute paths.
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imcache.core.errors import ImcacheError
from imcache.core.interfaces.load_body import INPUT_KEYS
from imcache.core.interfaces.load_outputs import OUTPUT_KEYS
from imcache.core.interfaces.loader import TOP_KEYS, load_interface
from imcache.core.interfaces.registry import BUILTIN
from imcache.core.plan import RunRequest, plan_run

# Modest, so that the file runs in seconds; no example database written anywhere.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MRCAT_JSON = Path(BUILTIN) / "mrtrix3" / "MRCat.json"
MERGE_JSON = Path(BUILTIN) / "fsl" / "Merge.json"

SMALL: dict[str, Any] = {
    "name": "imcache-prop-tool",
    "schema-version": "0.5",
    "description": "every kind of scalar, a flag, two kinds of list, glued and separate values",
    "command-line": "imcache-prop-tool [FLAG] [NAME] [LEVEL] [TAGS] [CSV] -o[OUT] [FILES]",
    "inputs": [
        {
            "id": "flag",
            "name": "flag",
            "type": "Flag",
            "optional": True,
            "command-line-flag": "-v",
            "value-key": "[FLAG]",
        },
        {
            "id": "name",
            "name": "name",
            "type": "String",
            "optional": True,
            "command-line-flag": "--name",
            "command-line-flag-separator": "=",
            "value-key": "[NAME]",
        },
        {
            "id": "level",
            "name": "level",
            "type": "Number",
            "optional": True,
            "command-line-flag": "-l",
            "value-key": "[LEVEL]",
        },
        {
            "id": "tags",
            "name": "tags",
            "type": "String",
            "list": True,
            "optional": True,
            "value-key": "[TAGS]",
        },
        {
            "id": "csv",
            "name": "csv",
            "type": "String",
            "list": True,
            "list-separator": ",",
            "optional": True,
            "value-key": "[CSV]",
        },
        {"id": "out", "name": "out", "type": "String", "optional": True, "value-key": "[OUT]"},
        {
            "id": "files",
            "name": "files",
            "type": "File",
            "list": True,
            "optional": True,
            "value-key": "[FILES]",
        },
    ],
    "output-files": [],
}

# Existing input files with hostile names (the last one is not UTF-8: b"caf\xe9.nii").
FILE_NAMES = [
    "plain.nii",
    "my image.nii",
    "new\nline.nii",
    "-rf.nii",
    "--help.nii",
    "quo'te\".nii",
    "$(touch x).nii",
    "ünï🧠.nii",
    " lead.nii",
    "a=b.nii",
    "*.nii",
    os.fsdecode(b"caf\xe9.nii"),
]

# Text that can reach an argv: any code point, surrogate-escaped bytes (arguments that are not
# UTF-8), lone surrogates and NUL (which no argv can carry: they must be refused), and the usual
# suspects.
SUSPECTS = [
    "",
    " ",
    "-",
    "--",
    "-rf",
    "--json",
    "--out-file=/etc/x",
    "--name=x",
    "a b",
    "a\tb\nc",
    "x; touch y",
    "$(touch y)",
    "`touch y`",
    "'",
    '"',
    "*",
    "=",
    "[OUT]",
    "[LEVEL]",
    "[IN_FILES]",
    "%s%d",
    "{in_files[0]}",
    "\x1b[2J",
    "\udce9",
    "caf\udce9",
    "\ud800",
    "\x00",
    "..",
    "../x",
    "/etc/passwd",
    "imcache.json",
]
ARGV_TEXT = st.one_of(
    st.text(max_size=12),
    st.binary(max_size=12).map(os.fsdecode),
    st.sampled_from(SUSPECTS),
)
NUMBER_TEXT = st.one_of(
    st.integers(min_value=-3, max_value=10**25).map(str),
    st.floats().map(repr),
    st.sampled_from(["1e400", "nan", "-inf", "1_0", " 3 ", "٣", "0x10", "3.0", "99" * 30]),
    ARGV_TEXT,
)
# A file name typed by hand: never with "/" (that could name the whole file system to hash).
TYPED_FILE = ARGV_TEXT.filter(lambda text: "/" not in text)


def _mostly(usual: st.SearchStrategy[str], rare: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """`usual` four times in five, else `rare`: most runs should get as far as the argv."""
    return st.tuples(st.integers(0, 4), usual, rare).map(lambda t: t[1] if t[0] else t[2])


FILE_VALUE = _mostly(st.sampled_from(FILE_NAMES), TYPED_FILE)
WHOLE_NUMBER = _mostly(st.integers(min_value=0, max_value=10**25).map(str), NUMBER_TEXT)


# --- (a) loading ------------------------------------------------------------------------------

KEYS = sorted(TOP_KEYS | INPUT_KEYS | OUTPUT_KEYS | {"imcache", "@type"})
KEY_TEXT = st.one_of(st.sampled_from(KEYS), ARGV_TEXT)
LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30),
    st.floats(),
    ARGV_TEXT,
    st.sampled_from(["File", "String", "Number", "Flag", "[IN_FILES]", "mrcat [X]", "~/x"]),
)
JSON_ISH = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEY_TEXT, children, max_size=5)
    ),
    max_leaves=24,
)


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every place inside a JSON value, the value itself first."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


@st.composite
def mutated_definitions(draw: st.DrawFn) -> object:
    """A real definition with one to four hostile edits."""
    source = draw(st.sampled_from([MRCAT_JSON, MERGE_JSON, None]))
    data: Any = copy.deepcopy(SMALL) if source is None else json.loads(source.read_text())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        places = [place for place in _paths(data) if place]
        if not places:
            break
        place = draw(st.sampled_from(places))
        parent: Any = data
        for key in place[:-1]:
            parent = parent[key]
        edit = draw(st.sampled_from(["drop", "replace", "weird", "add", "duplicate"]))
        if edit == "drop":
            del parent[place[-1]]
        elif edit == "replace":
            parent[place[-1]] = draw(JSON_ISH)
        elif edit == "weird":
            parent[place[-1]] = draw(st.sampled_from(SUSPECTS))
        elif edit == "add" and isinstance(parent, dict):
            parent[draw(KEY_TEXT)] = draw(JSON_ISH)
        elif edit == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[place[-1]]))
    return data


def _load(path: Path, payload: bytes) -> None:
    """Load `payload` as a definition: an interface, or an ImcacheError; nothing else."""
    path.write_bytes(payload)
    try:
        interface = load_interface(str(path), "prop.Loaded")
    except ImcacheError as error:
        assert str(error), "an error must say something"
        return
    assert interface.body.command_line.split()


@pytest.fixture(scope="module")
def definition_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("definitions") / "Loaded.json"


@PROPERTY
@given(data=JSON_ISH)
@example(data={"command-line": "tool [X]", "inputs": "x"})
@example(data={"command-line": 42, "name": "x"})
@example(data=[{"command-line": "tool"}])
@example(data={"command-line": "tool [X]", "inputs": [{"id": "x", "value-key": "[X]"}]})
def test_any_json_loads_or_is_refused(data: object, definition_file: Path) -> None:
    _load(definition_file, json.dumps(data).encode())


@PROPERTY
@given(data=mutated_definitions())
def test_a_mutated_definition_loads_or_is_refused(data: object, definition_file: Path) -> None:
    _load(definition_file, json.dumps(data).encode())


@PROPERTY
@given(
    cut=st.integers(min_value=0, max_value=4000),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=4),
)
@example(cut=0, flips=[])
@example(cut=10, flips=[])
@example(cut=4000, flips=[(5, 0xFF)])
def test_corrupted_bytes_load_or_are_refused(
    cut: int, flips: list[tuple[int, int]], definition_file: Path
) -> None:
    """The built-in MRCat definition cut short and with bytes overwritten (not UTF-8, NUL...)."""
    payload = bytearray(MRCAT_JSON.read_bytes()[: cut or None])
    for position, byte in flips:
        if payload:
            payload[position % len(payload)] = byte
    _load(definition_file, bytes(payload))


def _with_default(template: str) -> bytes:
    data = json.loads(MRCAT_JSON.read_text())
    data["custom"]["imcache"]["defaults"] = {"out_file": template}
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(
            b"[" * 100_000,
            id="nested 100000 deep",
        ),
        pytest.param(
            _with_default("{in_files[" + "1" * 5000 + "]}"),
            id="template index of 5000 digits",
        ),
    ],
)
def test_former_crashers_are_refused(payload: bytes, definition_file: Path) -> None:
    """Counterexamples found while writing the properties above, kept as regressions."""
    _load(definition_file, payload)


# --- (b) rendering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Playground:
    root: Path
    work: Path  # nested, so that a file value of ".." stays inside the playground
    catalogue: Path


@pytest.fixture(scope="module")
def playground(tmp_path_factory: pytest.TempPathFactory) -> Playground:
    root = tmp_path_factory.mktemp("playground")
    work = root / "a" / "b" / "work"
    work.mkdir(parents=True)
    for name in FILE_NAMES:
        (work / name).write_bytes(os.fsencode(name))
    catalogue = root / "catalogue"
    (catalogue / "prop").mkdir(parents=True)
    (catalogue / "prop" / "Small.json").write_text(json.dumps(SMALL))
    return Playground(root, work, catalogue)


@dataclass(frozen=True)
class Number:
    """An argv word that must render the number given as `raw` (formats vary: 1e+22, 10)."""

    raw: str

    def matches(self, word: str) -> bool:
        if word != word.strip() or not word:
            return False
        try:
            return math.isfinite(float(word)) and float(word) == float(self.raw)
        except ValueError:
            return False


Expected = list["str | Number"]


def _option_words(option: str, items: list[str], glued: list[bool]) -> list[str]:
    """Words that give `items` to `option`: `--opt=v` when chosen or needed (a value that
    starts with `--`), else `--opt v1 v2 ...`; a list stays open after `--opt=v`."""
    words: list[str] = []
    open_ = False
    for item, glue in zip(items, glued, strict=True):
        if glue or (item.startswith("--") and len(item) > 2):
            words.append(f"{option}={item}")
            open_ = True
        else:
            if not open_:
                words.append(option)
                open_ = True
            words.append(item)
    return words


def _example(parts: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """An explicit example: `parts` with the plainest words that give them."""
    words: list[str] = []
    for input_id, value in parts.items():
        items = value if isinstance(value, list) else [value]
        words += _option_words("--" + input_id.replace("_", "-"), items, [False] * len(items))
    return parts, words


@st.composite
def _words_for(draw: st.DrawFn, parts: dict[str, Any]) -> list[str]:
    """The words of `parts` ({input id: True for a flag, a value, or a list}) in random order."""
    words: list[str] = []
    for input_id in draw(st.permutations(sorted(parts))):
        value = parts[input_id]
        option = "--" + input_id.replace("_", "-")
        if value is True:
            words.append(option)
            continue
        items = value if isinstance(value, list) else [value]
        glued = draw(st.lists(st.booleans(), min_size=len(items), max_size=len(items)))
        words += _option_words(option, items, glued)
    return words


def _plan_argv(playground: Playground, name: str, words: list[str]) -> list[str] | None:
    """The argv `imcache run NAME WORDS --dry-run` would show; None for an ImcacheError."""
    request = RunRequest(
        interface=name,
        words=words,
        base_dir=str(playground.root / "base"),
        cwd=str(playground.work),
        env={"PATH": os.environ.get("PATH", os.defpath)},
        catalogues=[str(playground.catalogue)],
    )
    try:
        plan = plan_run(request)
    except ImcacheError:
        return None
    assert isinstance(plan.argv, list)
    assert all(isinstance(word, str) for word in plan.argv)
    return plan.argv


def _assert_argv(argv: list[str], expected: Expected) -> None:
    assert len(argv) == len(expected), f"{argv!r} != {expected!r}"
    for word, wanted in zip(argv, expected, strict=True):
        if isinstance(wanted, Number):
            assert wanted.matches(word), f"{word!r} does not render the number {wanted.raw!r}"
        else:
            assert word == wanted, f"{argv!r} != {expected!r}"


def _absolute(playground: Playground, names: list[str]) -> list[str]:
    return [os.path.abspath(os.path.join(playground.work, name)) for name in names]


@st.composite
def small_runs(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    parts: dict[str, Any] = {}
    if draw(st.booleans()):
        parts["flag"] = True
    for input_id, strategy in (("name", ARGV_TEXT), ("level", NUMBER_TEXT), ("out", ARGV_TEXT)):
        if draw(st.booleans()):
            parts[input_id] = draw(strategy)
    for input_id in ("tags", "csv"):
        if draw(st.booleans()):
            parts[input_id] = draw(st.lists(ARGV_TEXT, min_size=1, max_size=4))
    if draw(st.booleans()):
        parts["files"] = draw(st.lists(FILE_VALUE, min_size=1, max_size=4))
    return parts, draw(_words_for(parts))


@PROPERTY
@given(run=small_runs())
@example(run=_example({"name": "a b", "tags": ["x; y", "$(z)"], "out": "-rf"}))
@example(run=_example({"csv": ["a,b", "", "c d"], "out": "--x", "level": "1e+22"}))
@example(run=_example({"files": ["-rf.nii", "--help.nii", os.fsdecode(b"caf\xe9.nii")]}))
def test_small_definition_values_stay_whole_words(
    run: tuple[dict[str, Any], list[str]], playground: Playground
) -> None:
    parts, words = run
    argv = _plan_argv(playground, "prop.Small", words)
    if argv is None:
        return
    expected: Expected = ["imcache-prop-tool"]
    if parts.get("flag"):
        expected.append("-v")
    if "name" in parts:
        expected.append("--name=" + parts["name"])
    if "level" in parts:
        expected += ["-l", Number(parts["level"])]
    expected += parts.get("tags", [])
    if "csv" in parts:
        expected.append(",".join(parts["csv"]))
    expected.append("-o" + parts.get("out", ""))
    expected += _absolute(playground, parts.get("files", []))
    _assert_argv(argv, expected)


MRCAT_TYPES = ["float32", "int16", "uint8", "bit"]


@st.composite
def mrcat_runs(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    parts: dict[str, Any] = {}
    if draw(st.integers(0, 9)):  # mostly given: without it every run is refused
        parts["in_files"] = draw(st.lists(FILE_VALUE, min_size=1, max_size=5))
    for input_id in ("axis", "nthreads"):
        if draw(st.booleans()):
            parts[input_id] = draw(WHOLE_NUMBER)
    if draw(st.booleans()):
        parts["datatype"] = draw(_mostly(st.sampled_from(MRCAT_TYPES), ARGV_TEXT))
    if draw(st.booleans()):
        parts["out_file"] = draw(st.one_of(st.sampled_from(FILE_NAMES), ARGV_TEXT))
    return parts, draw(_words_for(parts))


@PROPERTY
@given(run=mrcat_runs())
@example(run=_example({"in_files": ["-rf.nii", "my image.nii"], "out_file": "-x.nii"}))
@example(run=_example({"in_files": ["--help.nii"], "nthreads": "99999999999999999999999"}))
@example(run=_example({"in_files": ["new\nline.nii"], "out_file": "$(touch y) z.nii"}))
def test_mrcat_values_stay_whole_words(
    run: tuple[dict[str, Any], list[str]], playground: Playground
) -> None:
    parts, words = run
    argv = _plan_argv(playground, "mrtrix3.MRCat", words)
    if argv is None:
        return
    expected: Expected = ["mrcat"]
    if "axis" in parts:
        expected += ["-axis", Number(parts["axis"])]
    if "datatype" in parts:
        expected += ["-datatype", parts["datatype"]]
    if "nthreads" in parts:
        expected += ["-nthreads", Number(parts["nthreads"])]
    expected += _absolute(playground, parts["in_files"])
    out_file = parts.get("out_file", "concatenated.mif")
    # An output name that starts with '-' is passed as ./-name, never as an option.
    expected.append(f"./{out_file}" if out_file.startswith("-") else out_file)
    _assert_argv(argv, expected)
