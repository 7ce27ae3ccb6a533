"""Every property the loader reads, given a value of the wrong type (or of the wrong shape inside
a list or an object), is refused with one line that names the file and the field (issue 12).

`full()` holds each such property once, validly. Each row of SHAPES puts wrong values, one at a
time, at one place of it, and says which field the refusal must name and what it must say. The
refusal must be the loader's own `DefinitionError` (the CLI prints it as one line, exit 1): any
other exception is a crash (exit 3) and fails the test with its traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from imcache.core.errors import DefinitionError
from imcache.core.interfaces import loader
from imcache.core.interfaces.extension import EXTENSION_KEYS
from imcache.core.interfaces.load_body import GROUP_KEYS, INPUT_KEYS, MAX_NESTING, SUB_KEYS
from imcache.core.interfaces.load_outputs import OUTPUT_KEYS
from imcache.core.interfaces.loader import TOP_KEYS, load_interface


def full() -> dict[str, Any]:
    """A valid descriptor in which every property the loader reads appears."""
    return {
        "name": "tool",
        "tool-version": "1.0",
        "description": "every property the loader reads, once",
        "command-line": "tool [FLAG] [LEVEL] [MODE] [FILES] [OUT] [SUB] [CHOICE] [RESULT]",
        "environment-variables": [{"name": "LANG", "value": "C", "description": "fixed"}],
        "stdout-output": {"id": "log", "name": "log", "description": "what it prints"},
        "stderr-output": {"id": "errors", "name": "errors", "description": "its complaints"},
        "inputs": [
            {
                "id": "flag",
                "name": "flag",
                "description": "a switch",
                "type": "Flag",
                "optional": True,
                "command-line-flag": "-f",
                "default-value": False,
                "value-key": "[FLAG]",
            },
            {
                "id": "level",
                "name": "level",
                "type": "Number",
                "optional": True,
                "integer": False,
                "minimum": 0,
                "maximum": 9,
                "exclusive-minimum": False,
                "exclusive-maximum": True,
                "command-line-flag": "-l",
                "command-line-flag-separator": "=",
                "default-value": 1,
                "value-key": "[LEVEL]",
            },
            {
                "id": "mode",
                "name": "mode",
                "type": "String",
                "optional": True,
                "value-choices": ["fast", "slow"],
                "default-value": "fast",
                "value-requires": {"fast": ["flag"]},
                "value-disables": {"slow": ["level"]},
                "value-key": "[MODE]",
            },
            {
                "id": "files",
                "name": "files",
                "type": "File",
                "list": True,
                "list-separator": ",",
                "min-list-entries": 1,
                "max-list-entries": 3,
                "value-key": "[FILES]",
            },
            {
                "id": "out",
                "name": "out",
                "type": "String",
                "optional": True,
                "requires-inputs": ["files"],
                "disables-inputs": ["flag"],
                "default-value": "out",
                "value-key": "[OUT]",
            },
            {
                "id": "sub",
                "name": "sub",
                "type": {
                    "id": "fit",
                    "name": "fit",
                    "command-line": "fit [ORDER]",
                    "inputs": [
                        {
                            "id": "order",
                            "name": "order",
                            "type": "Number",
                            "optional": True,
                            "value-key": "[ORDER]",
                        }
                    ],
                    "output-files": [{"id": "fitted", "name": "fitted", "path-template": "f.txt"}],
                    "groups": [{"id": "orders", "name": "orders", "members": ["order"]}],
                },
                "optional": True,
                "value-key": "[SUB]",
            },
            {
                "id": "choice",
                "name": "choice",
                "type": [{"id": "a", "command-line": "a"}, {"id": "b", "command-line": "b"}],
                "optional": True,
                "value-key": "[CHOICE]",
            },
            {
                "id": "suffix",
                "name": "suffix",
                "type": "String",
                "optional": True,
                "value-key": "[SUFFIX]",
            },
        ],
        "output-files": [
            {
                "id": "result",
                "name": "result",
                "description": "the result",
                "path-template": "[OUT].nii",
                "path-template-stripped-extensions": [".nii"],
                "optional": False,
                "list": False,
                "value-key": "[RESULT]",
                "command-line-flag": "-o",
                "command-line-flag-separator": " ",
            },
            {"id": "config", "name": "config", "path-template": "c.txt", "file-template": ["x"]},
        ],
        "groups": [
            {
                "id": "speed",
                "name": "speed",
                "description": "how fast",
                "members": ["flag", "level"],
                "mutually-exclusive": False,
                "one-is-required": False,
                "all-or-none": False,
            }
        ],
        "custom": {
            "imcache": {
                "defaults": {"out": ["{files[0]|stem}{suffix}{env.OUTTYPE|ext}", "{files|stem}"]},
                "maps": {
                    "ext": {"NIFTI": ".nii", "NIFTI_GZ": ".nii.gz"},
                    "speed": {"fast": "f", "slow": "s"},
                },
                "formats": {
                    "out": "%s",
                    "level": {"printf": "%.1f", "divide-by": 2},
                    "mode": {"map": "speed"},
                    "files": {"count": "%d"},
                },
                "env": {
                    "OUTTYPE": {
                        "default": "NIFTI",
                        "choices": ["NIFTI", "NIFTI_GZ"],
                        "description": "the file type",
                    }
                },
                "rules": [
                    {"if-set": "flag", "require": {"mode": ["fast"]}, "render": {"mode": "x"}}
                ],
                "tool-check": "content",
                "output-names": {"result": "result_file"},
                "output-templates": {"result": "{out}.nii"},
                "output-if-any": {"config": ["level"]},
                "template-only": ["suffix"],
                "companions": {"files": [".bval", {"suffix": ".json", "required": False}]},
            }
        },
    }


# Wrong values by the type a property must have.
TEXT = (None, True, 3, 1.5, [], ["x"], {})
BOOLEAN = (None, "true", 1, 0, [], {})
NUMBER = (None, True, "1", [], [1], {})
COUNT = (None, True, -1, 1.5, "1", [], {})
IDS = (None, "flag", 1, {}, [1], [None], [True], [["flag"]], [{}])
STRINGS = (None, ".nii", 1, {}, [1], [None], [[]], [{}])
LIST = (None, "x", 1, True, {})
OBJECT = (None, "x", 1, True, [], [{}])
SUB_TYPE = (None, 1, True, [], [1], ["File"], [None], [[]])

INPUT = {item["id"]: f'inputs[{i}] (id "{item["id"]}")' for i, item in enumerate(full()["inputs"])}
OUTPUT = {
    o["id"]: f'output-files[{i}] (id "{o["id"]}")' for i, o in enumerate(full()["output-files"])
}
EXT = "custom.imcache"


@dataclass(frozen=True)
class Shape:
    at: tuple[str | int, ...]  # where in full() the wrong value goes
    field: str  # the field the refusal names
    says: str  # what the refusal says about it
    wrong: tuple[object, ...]


def _input_shapes() -> list[Shape]:
    at = ("inputs", 1)  # level: most properties apply to a Number
    level = INPUT["level"]
    rows = [
        Shape(("inputs", 0), "inputs[0]", "must be a JSON object", (None, "x", 1, [], True)),
        Shape((*at, "id"), "inputs[1].id", "must be a string", TEXT),
        Shape((*at, "value-key"), f"{level}.value-key", "must be a string", TEXT),
        Shape((*at, "type"), f"{level}.type", "must be File, String, Number, Flag", SUB_TYPE),
        Shape((*at, "type"), f"{level}.type", "unknown type", ("Text", "file", "")),
        Shape(
            (*at, "minimum"), f"{level}.minimum", "must be a finite number", (float("inf"), 10**400)
        ),
        Shape(
            (*at, "maximum"),
            f"{level}.maximum",
            "must be a finite number",
            (float("nan"), -(10**400)),
        ),
    ]
    for key in ("name", "description", "command-line-flag", "command-line-flag-separator"):
        rows.append(Shape((*at, key), f"{level}.{key}", "must be a string", TEXT))
    for key in ("optional", "integer", "exclusive-minimum", "exclusive-maximum"):
        rows.append(Shape((*at, key), f"{level}.{key}", "must be true or false", BOOLEAN))
    for key in ("minimum", "maximum"):
        rows.append(Shape((*at, key), f"{level}.{key}", "must be a number", NUMBER))
    files = ("inputs", 3)
    rows += [
        Shape((*files, "list"), f"{INPUT['files']}.list", "must be true or false", BOOLEAN),
        Shape((*files, "list-separator"), f"{INPUT['files']}.list-separator", "string", TEXT),
    ]
    for key in ("min-list-entries", "max-list-entries"):
        rows.append(Shape((*files, key), f"{INPUT['files']}.{key}", "whole number >= 0", COUNT))
    out = ("inputs", 4)
    for key in ("requires-inputs", "disables-inputs"):
        rows.append(Shape((*out, key), f"{INPUT['out']}.{key}", "must be a list of ids", IDS))
    mode, at_mode = INPUT["mode"], ("inputs", 2)
    rows += [
        Shape((*at_mode, "value-choices"), f"{mode}.value-choices", "non-empty list", LIST),
        Shape((*at_mode, "value-choices"), f"{mode}.value-choices", "non-empty list", ([],)),
        Shape(
            (*at_mode, "value-choices"),
            f"{mode}.value-choices",
            "is not a string or number",
            ([["fast"]], ["fast", {}], [None], [True]),
        ),
    ]
    for key, choice in (("value-requires", "fast"), ("value-disables", "slow")):
        rows += [
            Shape((*at_mode, key), f"{mode}.{key}", "must map each choice", (*LIST[:4], [])),
            Shape((*at_mode, key, choice), f"{mode}.{key}.{choice}", "a list of ids", IDS),
        ]
    return rows


def _default_shapes() -> list[Shape]:
    """A default must be a value of its input: its type, its list-ness, and never null."""

    def at(input_id: str) -> tuple[str | int, ...]:
        index = next(i for i, item in enumerate(full()["inputs"]) if item["id"] == input_id)
        return ("inputs", index, "default-value")

    def field(input_id: str) -> str:
        return f"{INPUT[input_id]}.default-value"

    return [
        *(Shape(at(i), field(i), "must not be null", (None,)) for i in INPUT),
        Shape(at("flag"), field("flag"), "true or false for a Flag", ("yes", 1, {})),
        Shape(at("flag"), field("flag"), "must not be a list", ([True], [])),
        Shape(at("level"), field("level"), "is not a number", ("1", True, {})),
        Shape(at("level"), field("level"), "must not be a list", ([1],)),
        Shape(at("out"), field("out"), "must be a string for a String", (1, True, {})),
        Shape(at("out"), field("out"), "must not be a list", (["x"],)),
        Shape(at("files"), field("files"), "must be a string for a File", ([1], [None], [[]])),
        Shape(at("mode"), field("mode"), "is not one of the value-choices", (1, True, {})),
        Shape(at("sub"), field("sub"), "a sub-command input cannot have a default", ("x", 1)),
    ]


def _sub_command_shapes() -> list[Shape]:
    sub, fit = INPUT["sub"], ("inputs", 5, "type")
    rows = [
        Shape((*fit, "id"), f"{sub}.type.id", "must be a string", TEXT),
        Shape((*fit, "command-line"), f"{sub}.type.command-line", "must be a string", TEXT),
        Shape((*fit, "inputs", 0), f"{sub}.type.inputs[0]", "must be a JSON object", OBJECT),
        Shape(
            (*fit, "inputs", 0, "optional"),
            f'{sub}.type.inputs[0] (id "order").optional',
            "must be true or false",
            BOOLEAN,
        ),
        Shape(
            (*fit, "output-files", 0, "path-template"),
            f'{sub}.type.output-files[0] (id "fitted").path-template',
            "must be a string",
            TEXT,
        ),
        Shape(
            (*fit, "groups", 0, "members"),
            f"{sub}.type.groups[0].members",
            "must be a list of ids",
            IDS,
        ),
    ]
    for key in ("inputs", "output-files", "groups"):
        rows.append(Shape((*fit, key), f"{sub}.type.{key}", "must be a list", LIST))
    choice, variants = INPUT["choice"], ("inputs", 6, "type")
    rows += [
        Shape((*variants, 0), f"{choice}.type", "or a Styx sub-command object", LIST[:4]),
        Shape((*variants, 0), f"{choice}.type[0].id", "is required", ({},)),
        Shape((*variants, 0, "id"), f"{choice}.type[0].id", "must be a string", TEXT),
        Shape((*variants, 1, "command-line"), f"{choice}.type[1].command-line", "a string", TEXT),
    ]
    return rows


def _output_shapes() -> list[Shape]:
    result, at = OUTPUT["result"], ("output-files", 0)
    rows = [
        Shape(at, "output-files[0]", "must be a JSON object", (None, "x", 1, [], True)),
        Shape((*at, "id"), "output-files[0].id", "must be a string", TEXT),
        Shape((*at, "path-template"), f"{result}.path-template", "must be a string", TEXT),
        Shape(
            (*at, "path-template-stripped-extensions"),
            f"{result}.path-template-stripped-extensions",
            "must be a list of strings",
            STRINGS,
        ),
        Shape(
            ("output-files", 1, "file-template"),
            f"{OUTPUT['config']}.file-template",
            "must be a list of lines",
            STRINGS,
        ),
    ]
    for key in ("name", "description", "value-key", "command-line-flag"):
        rows.append(Shape((*at, key), f"{result}.{key}", "must be a string", TEXT))
    rows.append(
        Shape(
            (*at, "command-line-flag-separator"),
            f"{result}.command-line-flag-separator",
            "must be a string",
            TEXT,
        )
    )
    for key in ("optional", "list"):
        rows.append(Shape((*at, key), f"{result}.{key}", "must be true or false", BOOLEAN))
    return rows


def _top_shapes() -> list[Shape]:
    rows = [
        Shape(("groups", 0), "groups[0]", "must be a JSON object", (None, "x", 1, [], True)),
        Shape(("groups", 0, "id"), "groups[0].id", "must be a string", TEXT),
        Shape(("groups", 0, "members"), "groups[0].members", "must be a list of ids", IDS),
        Shape(
            ("environment-variables",),
            "environment-variables",
            "must be a list of {name, value} objects",
            LIST,
        ),
        Shape(
            ("environment-variables", 0),
            "environment-variables[0]",
            "must be a JSON object",
            (None, "x", 1, [], True),
        ),
    ]
    for key in ("mutually-exclusive", "one-is-required", "all-or-none"):
        rows.append(Shape(("groups", 0, key), f"groups[0].{key}", "true or false", BOOLEAN))
    for key in ("name", "command-line", "description", "tool-version"):
        rows.append(Shape((key,), key, "must be a string", TEXT))
    for key in ("inputs", "output-files", "groups"):
        rows.append(Shape((key,), key, "must be a list", LIST))
    for key in ("name", "value"):
        at = ("environment-variables", 0, key)
        rows.append(Shape(at, f"environment-variables[0].{key}", "must be a string", TEXT))
    for stream in ("stdout-output", "stderr-output"):
        rows.append(Shape((stream,), stream, "must be a JSON object", OBJECT))
        for key in ("id", "name", "description"):
            rows.append(Shape((stream, key), f"{stream}.{key}", "must be a string", TEXT))
    return rows


def _extension_shapes() -> list[Shape]:
    def at(*steps: str | int) -> tuple[str | int, ...]:
        return ("custom", "imcache", *steps)

    def field(*steps: str | int) -> str:
        return EXT + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)

    rows = [
        Shape(("custom",), "custom", "must be a JSON object", OBJECT),
        Shape(at(), EXT, "must be a JSON object", OBJECT),
        Shape(
            at("defaults", "out"),
            field("defaults", "out"),
            "a template or a non-empty list of them",
            (None, 1, True, {}, [], [1], [None], [[]]),
        ),
        Shape(at("maps", "ext"), field("maps", "ext"), "must be a JSON object", OBJECT),
        Shape(at("maps", "ext", "NIFTI"), field("maps", "ext", "NIFTI"), "a string", TEXT),
        Shape(at("formats", "out"), field("formats", "out"), "a printf format or", TEXT[:-1]),
        Shape(
            at("formats", "level", "divide-by"),
            field("formats", "level", "divide-by"),
            "a number",
            NUMBER,
        ),
        Shape(at("env", "OUTTYPE"), field("env", "OUTTYPE"), "must be a JSON object", OBJECT),
        Shape(
            at("env", "OUTTYPE", "choices"),
            field("env", "OUTTYPE", "choices"),
            "must be a list of strings",
            STRINGS,
        ),
        Shape(at("rules"), field("rules"), "must be a list", LIST),
        Shape(at("rules", 0), field("rules", 0), "must be a JSON object", OBJECT),
        Shape(at("rules", 0, "if-set"), field("rules", 0, "if-set"), "must be a string", TEXT),
        Shape(at("rules", 0, "require", "mode"), field("rules", 0, "require", "mode"), "ids", IDS),
        Shape(
            at("rules", 0, "render", "mode"), field("rules", 0, "render", "mode"), "a string", TEXT
        ),
        Shape(at("tool-check"), field("tool-check"), "'mtime' or 'content'", (*TEXT, "fast")),
        Shape(at("output-if-any", "config"), field("output-if-any", "config"), "ids", IDS),
        Shape(at("template-only"), field("template-only"), "must be a list of ids", IDS),
    ]
    for key in ("defaults", "maps", "formats", "env", "output-names", "output-templates"):
        rows.append(Shape(at(key), field(key), "must be a JSON object", OBJECT))
    rows += [
        Shape(at("output-if-any"), field("output-if-any"), "must be a JSON object", OBJECT),
        Shape(at("rules", 0, "require"), field("rules", 0, "require"), "a JSON object", OBJECT),
        Shape(at("rules", 0, "render"), field("rules", 0, "render"), "a JSON object", OBJECT),
    ]
    for key in ("output-names", "output-templates"):
        rows.append(Shape(at(key, "result"), field(key, "result"), "must be a string", TEXT))
    files = ("companions", "files")
    rows += [
        Shape(at("companions"), field("companions"), "must be a JSON object", OBJECT),
        Shape(at(*files), field(*files), "a non-empty list of suffixes", (*LIST, [])),
        Shape(at(*files, 0), field(*files, 0), "not a suffix", (None, 1, True, [], {}, "bval")),
        Shape(at(*files, 1, "suffix"), field(*files, 1), "not a suffix", (None, 1, [], {})),
        Shape(at(*files, 1, "required"), field(*files, 1, "required"), "true or false", BOOLEAN),
    ]
    for input_id, key in (("level", "printf"), ("mode", "map"), ("files", "count")):
        rows.append(
            Shape(at("formats", input_id, key), field("formats", input_id, key), "a string", TEXT)
        )
    for key in ("default", "description"):
        rows.append(
            Shape(at("env", "OUTTYPE", key), field("env", "OUTTYPE", key), "a string", TEXT)
        )
    return rows


SHAPES = [
    *_top_shapes(),
    *_input_shapes(),
    *_default_shapes(),
    *_sub_command_shapes(),
    *_output_shapes(),
    *_extension_shapes(),
]


def _shown(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) < 30 else f"{text[:10]}...({len(text)} characters)"


CASES = [
    pytest.param(shape, value, id=f"{shape.field} = {_shown(value)}")
    for shape in SHAPES
    for value in shape.wrong
]


def _put(data: dict[str, Any], at: tuple[str | int, ...], value: object) -> dict[str, Any]:
    holder: Any = data
    for step in at[:-1]:
        holder = holder[step]
    holder[at[-1]] = value
    return data


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "defs" / "shape.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path


def test_the_full_definition_loads(tmp_path: Path) -> None:
    interface = load_interface(str(_write(tmp_path, full())), "test.shape")
    assert [spec.id for spec in interface.inputs] == list(INPUT)
    assert interface.body.input("sub").variants[0].inputs[0].id == "order"
    assert [variant.id for variant in interface.body.input("choice").variants] == ["a", "b"]
    assert interface.extension.tool_check == "content"
    assert interface.extension.rules[0].require == {"mode": ("fast",)}


@pytest.mark.parametrize(("shape", "value"), CASES)
def test_a_wrong_shape_is_refused_in_one_line(shape: Shape, value: object, tmp_path: Path) -> None:
    path = _write(tmp_path, _put(full(), shape.at, value))
    with pytest.raises(DefinitionError) as caught:  # any other exception: a crash, and a failure
        load_interface(str(path), "test.shape")
    error = caught.value
    assert error.source == str(path)
    assert error.field == shape.field, str(error)
    assert shape.says in error.problem, str(error)
    assert str(error).startswith(f"{path}: {shape.field}: ")
    assert "\n" not in str(error)


# What the loader allows but never reads (Boutiques metadata, and what bosh alone uses): no row.
NOT_READ = {
    "top": TOP_KEYS
    - {"name", "command-line", "description", "tool-version", "inputs", "output-files"}
    - {"groups", "environment-variables", "stdout-output", "stderr-output", "custom"},
    "input": {"uses-absolute-path", "resolve-parent", "mutable", "media-types"},
    "output": {"uses-absolute-path", "conditional-path-template"},
    "group": {"name", "description"},
    "sub": {"name", "description"},
}


def _tails(prefix: tuple[str | int, ...], width: int) -> set[str]:
    """The property names the rows put a wrong value in, just below `prefix`."""
    return {
        str(shape.at[len(prefix) + width - 1])
        for shape in SHAPES
        if shape.at[: len(prefix)] == prefix and len(shape.at) >= len(prefix) + width
    }


def test_every_property_the_loader_reads_has_a_row() -> None:
    """A property added to the loader needs a row here (or a place in NOT_READ)."""
    inputs = {k for i in range(len(INPUT)) for k in _tails(("inputs", i), 1)}
    outputs = {k for i in range(len(OUTPUT)) for k in _tails(("output-files", i), 1)}
    assert _tails((), 1) | NOT_READ["top"] == TOP_KEYS
    assert inputs | NOT_READ["input"] == INPUT_KEYS
    assert outputs | NOT_READ["output"] == OUTPUT_KEYS
    assert _tails(("groups", 0), 1) | NOT_READ["group"] == GROUP_KEYS
    assert _tails(("inputs", 5, "type"), 1) | NOT_READ["sub"] == SUB_KEYS
    assert _tails(("custom", "imcache"), 1) == EXTENSION_KEYS


# --- what else must not crash the loader ---------------------------------------------------------


def _nested(depth: int) -> dict[str, Any]:
    """A descriptor whose one input is a sub-command `depth` levels deep."""
    body: dict[str, Any] = {"id": "leaf", "command-line": "leaf"}
    for level in range(depth - 1):
        key = f"[LEVEL{level}]"
        inner = {"id": f"in{level}", "type": body, "optional": True, "value-key": key}
        body = {"id": f"v{level}", "command-line": key, "inputs": [inner]}
    top = {"id": "top", "type": body, "optional": True, "value-key": "[TOP]"}
    return {"name": "deep", "command-line": "deep [TOP]", "inputs": [top]}


def test_sub_commands_nested_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    """Far deeper than any real tool, and shallow enough for every walk of a run."""
    interface = load_interface(str(_write(tmp_path, _nested(MAX_NESTING))), "test.deep")
    assert interface.body.input("top").variants[0].id == f"v{MAX_NESTING - 2}"
    with pytest.raises(DefinitionError, match=f"nested more than {MAX_NESTING} deep"):
        load_interface(str(_write(tmp_path, _nested(MAX_NESTING + 1))), "test.deep")
    path = tmp_path / "deeper.json"
    path.write_text(json.dumps(_nested(300)))  # once a RecursionError
    with pytest.raises(DefinitionError, match="nested"):
        load_interface(str(path), "test.deep")


def test_a_walk_that_runs_out_of_stack_is_a_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def too_deep(data: object) -> str:
        raise RecursionError

    monkeypatch.setattr(loader, "canonical_digest", too_deep)
    with pytest.raises(DefinitionError, match="nested too deeply to be a definition"):
        load_interface(str(_write(tmp_path, full())), "test.shape")


def test_a_number_of_too_many_digits_is_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "digits.json"
    path.write_text('{"name": "t", "command-line": "t", "tool-version": ' + "9" * 5000 + "}")
    with pytest.raises(DefinitionError, match="a number of too many digits") as caught:
        load_interface(str(path), "test.digits")
    assert caught.value.source == str(path)


QUOTED = [
    ("a-key", ("inputs", 0, "optional\nx"), True, "inputs[0].optional\\nx"),
    (
        "a-value-key",
        ("inputs", 1, "value-key"),
        "[LEVEL]\n\x1b[2J",
        'inputs (id "level").value-key',
    ),
    ("a-type", ("inputs", 1, "type"), "File\r", 'inputs[1] (id "level").type'),
]


@pytest.mark.parametrize(("case", "at", "value", "field"), QUOTED, ids=[q[0] for q in QUOTED])
def test_control_characters_quoted_in_a_refusal_are_escaped(
    case: str, at: tuple[str | int, ...], value: object, field: str, tmp_path: Path
) -> None:
    """A key or value of the file, quoted in the message, never makes a second line."""
    path = _write(tmp_path, _put(full(), at, value))
    with pytest.raises(DefinitionError) as caught:
        load_interface(str(path), "test.shape")
    assert caught.value.field == field, str(caught.value)
    assert str(caught.value).isprintable(), repr(str(caught.value))
