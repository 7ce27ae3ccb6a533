"""argv rendering: the words bosh's shell would have seen, built without any shell.

Each test writes a small descriptor into a private catalogue and plans a run with `plan_run`;
nothing is executed (the tools named here need not exist).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imcache.core.errors import ImcacheError, UsageError
from imcache.core.interfaces.render import Segment, split_words
from imcache.core.plan import Plan, RunRequest, plan_run


def _input(
    input_id: str, kind: str | list[Any] | dict[str, Any] = "String", **more: object
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": input_id,
        "name": input_id,
        "type": kind,
        "value-key": f"[{input_id.upper()}]",
    }
    item.update({key.replace("_", "-"): value for key, value in more.items()})
    return item


def _plan(
    root: Path,
    command_line: str,
    inputs: list[dict[str, Any]],
    words: list[str],
    outputs: list[dict[str, Any]] | None = None,
) -> Plan:
    """Write `test/tool.json` under `root` and plan a run of it from the current folder."""
    descriptor = {"name": "tool", "command-line": command_line, "inputs": inputs}
    if outputs is not None:
        descriptor["output-files"] = outputs
    catalogue = root / "catalogue"
    (catalogue / "test").mkdir(parents=True, exist_ok=True)
    (catalogue / "test" / "tool.json").write_text(json.dumps(descriptor))
    return plan_run(
        RunRequest(
            interface="test.tool",
            words=words,
            base_dir=str(root / "base"),
            cwd=os.getcwd(),
            env={"PATH": os.environ.get("PATH", "")},
            catalogues=[str(catalogue)],
        )
    )


# --- lists and separators -------------------------------------------------------------------


def test_list_separator_comma_gives_one_word(tmp_path: Path) -> None:
    inputs = [_input("labels", list=True, list_separator=",", command_line_flag="-l")]
    plan = _plan(tmp_path, "tool [LABELS] end", inputs, ["--labels", "a", "b c", "d"])
    assert plan.argv == ["tool", "-l", "a,b c,d", "end"]


def test_file_list_with_comma_separator_gives_one_word_of_absolute_paths(
    tmp_path: Path, isolated: Path
) -> None:
    for name in ("x.nii", "y.nii"):
        (isolated / name).write_text(name)
    inputs = [_input("files", "File", list=True, list_separator=",")]
    plan = _plan(tmp_path, "tool [FILES]", inputs, ["--files", "x.nii", "y.nii"])
    assert plan.argv == ["tool", f"{isolated / 'x.nii'},{isolated / 'y.nii'}"]


def test_default_list_separator_gives_one_word_per_item(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "tool [ITEMS]", [_input("items", list=True)], ["--items", "a b", "c"])
    assert plan.argv == ["tool", "a b", "c"]


def test_flag_separator_equals_glues_flag_and_value(tmp_path: Path) -> None:
    inputs = [
        _input("x", command_line_flag="--x", command_line_flag_separator="="),
        _input(
            "n", "Number", optional=True, command_line_flag="-n", command_line_flag_separator=""
        ),
    ]
    plan = _plan(tmp_path, "tool [X] [N]", inputs, ["--x", "v w", "--n", "3"])
    assert plan.argv == ["tool", "--x=v w", "-n3"]


def test_flag_separator_with_a_list(tmp_path: Path) -> None:
    inputs = [
        _input(
            "x",
            list=True,
            list_separator=",",
            command_line_flag="--x",
            command_line_flag_separator="=",
        )
    ]
    plan = _plan(tmp_path, "tool [X]", inputs, ["--x", "a", "b"])
    assert plan.argv == ["tool", "--x=a,b"]


# --- values are never shell-split -------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a b",
        "  lead and trail  ",
        "tab\there",
        "new\nline",
        "'quoted'",
        '"double"',
        "$(rm -rf ~)",
        "a;b|c&d",
        "*.nii",
        "~",
        "\\",
        "[S]",
        "[OTHER]",
        "--",
        "é ü 漢字",
    ],
)
def test_value_with_spaces_and_shell_syntax_stays_one_word(value: str, tmp_path: Path) -> None:
    inputs = [_input("s", command_line_flag="-s"), _input("other", optional=True)]
    plan = _plan(tmp_path, "tool [S] [OTHER] end", inputs, [f"--s={value}"])
    assert plan.argv == ["tool", "-s", value, "end"]


def test_file_value_starting_with_dash_is_an_absolute_path(tmp_path: Path, isolated: Path) -> None:
    (isolated / "-weird.nii").write_text("x")
    (isolated / "--worse.nii").write_text("y")
    inputs = [
        _input("in_file", "File"),
        _input("extra", "File", optional=True, command_line_flag="-e"),
    ]
    plan = _plan(
        tmp_path,
        "tool [IN_FILE] [EXTRA]",
        inputs,
        ["--in-file", "-weird.nii", "--extra=--worse.nii"],
    )
    assert plan.argv == ["tool", str(isolated / "-weird.nii"), "-e", str(isolated / "--worse.nii")]


def test_file_value_is_absolute_whatever_the_spelling(tmp_path: Path, isolated: Path) -> None:
    (isolated / "sub").mkdir()
    (isolated / "sub" / "a b.nii").write_text("x")
    plan = _plan(
        tmp_path,
        "tool [IN_FILE]",
        [_input("in_file", "File")],
        ["--in-file", "./sub/../sub/a b.nii"],
    )
    assert plan.argv == ["tool", str(isolated / "sub" / "a b.nii")]


# --- absent inputs ------------------------------------------------------------------------------


def test_absent_optional_input_leaves_no_empty_word(tmp_path: Path) -> None:
    inputs = [
        _input("a", optional=True),
        _input("b", optional=True, command_line_flag="-b"),
        _input("c"),
        _input("d", optional=True, command_line_flag="--d", command_line_flag_separator="="),
        _input("verbose", "Flag", command_line_flag="-v"),
    ]
    plan = _plan(tmp_path, "tool  [A]   [B] [VERBOSE]\t[C] [D]  ", inputs, ["--c", "c"])
    assert plan.argv == ["tool", "c"]


def test_empty_string_given_is_one_empty_word(tmp_path: Path) -> None:
    """Given, even empty, is not absent: bosh's shell would pass '' as one argument too."""
    plan = _plan(tmp_path, "tool [A] end", [_input("a", optional=True)], ["--a="])
    assert plan.argv == ["tool", "", "end"]


def test_flag_renders_only_when_set(tmp_path: Path) -> None:
    inputs = [
        _input("verbose", "Flag", command_line_flag="-v"),
        _input("quiet", "Flag", command_line_flag="-q"),
    ]
    plan = _plan(tmp_path, "tool [VERBOSE] [QUIET]", inputs, ["--quiet"])
    assert plan.argv == ["tool", "-q"]


# --- glued tokens -------------------------------------------------------------------------------


def test_composite_tokens_glue_into_one_word(tmp_path: Path) -> None:
    inputs = [_input("a"), _input("b"), _input("out", optional=True)]
    plan = _plan(
        tmp_path, "tool [A][B] -o[OUT] [A],[B]", inputs, ["--a", "x y", "--b", "z", "--out", "o"]
    )
    assert plan.argv == ["tool", "x yz", "-oo", "x y,z"]


def test_composite_token_with_one_part_absent(tmp_path: Path) -> None:
    inputs = [_input("a", optional=True), _input("b", optional=True)]
    assert _plan(tmp_path, "tool [A][B] end", inputs, ["--b", "z"]).argv == ["tool", "z", "end"]
    assert _plan(tmp_path, "tool [A][B] end", inputs, []).argv == ["tool", "end"]


def test_value_key_prefix_of_another_is_matched_whole(tmp_path: Path) -> None:
    inputs = [
        {"id": "inp", "name": "inp", "type": "String", "value-key": "[IN]"},
        {"id": "in_file", "name": "in_file", "type": "String", "value-key": "[IN_FILE]"},
    ]
    plan = _plan(tmp_path, "tool [IN] [IN_FILE]", inputs, ["--inp", "1", "--in-file", "2"])
    assert plan.argv == ["tool", "1", "2"]


def test_output_value_key_renders_the_relative_output_path(tmp_path: Path) -> None:
    inputs = [_input("prefix")]
    outputs = [
        {
            "id": "out",
            "name": "out",
            "path-template": "[PREFIX]_brain.nii.gz",
            "value-key": "[OUT]",
            "command-line-flag": "-o",
        }
    ]
    plan = _plan(tmp_path, "tool [PREFIX] [OUT]", inputs, ["--prefix", "sub 01"], outputs)
    assert plan.argv == ["tool", "sub 01", "-o", "sub 01_brain.nii.gz"]
    assert [out.path for out in plan.outputs] == ["sub 01_brain.nii.gz"]


def test_output_path_fills_each_value_key_once(tmp_path: Path) -> None:
    """A value is text, never a template: `x[A]y` given for [BB] must not have its `[A]` filled in
    afterwards (argv rendering gets this right; the output path must name the same file)."""
    inputs = [_input("a"), _input("bb")]
    outputs = [{"id": "o", "name": "o", "path-template": "[A]-[BB].txt"}]
    plan = _plan(tmp_path, "tool [A] [BB]", inputs, ["--a", "1", "--bb", "x[A]y"], outputs)
    assert plan.argv == ["tool", "1", "x[A]y"]
    assert [out.path for out in plan.outputs] == ["1-x[A]y.txt"]


def test_split_words_directly() -> None:
    segments = [
        Segment("tool  -a", False),
        Segment("v 1", True),
        Segment(" ", False),
        Segment("", True),
        Segment("  x", False),
        Segment("y", True),
    ]
    assert split_words(segments) == ["tool", "-av 1", "", "xy"]


# --- Styx sub-commands ---------------------------------------------------------------------------


TRANSFORM = _input(
    "transform",
    [
        {
            "id": "single",
            "name": "single",
            "command-line": "[FILE]",
            "inputs": [{"id": "file", "name": "file", "type": "File", "value-key": "[FILE]"}],
        },
        {
            "id": "inverse",
            "name": "inverse",
            "command-line": "[[FILE],1]",
            "inputs": [{"id": "file", "name": "file", "type": "File", "value-key": "[FILE]"}],
        },
    ],
    optional=True,
    command_line_flag="-t",
)
SMOOTH = _input(
    "smooth",
    {
        "id": "smooth_options",
        "name": "smooth",
        "command-line": "-s [SIGMA] [MODE]",
        "inputs": [
            {"id": "sigma", "name": "sigma", "type": "Number", "value-key": "[SIGMA]"},
            {
                "id": "mode",
                "name": "mode",
                "type": "String",
                "optional": True,
                "command-line-flag": "--mode",
                "value-key": "[MODE]",
            },
        ],
    },
    optional=True,
)
OPERATIONS = _input(
    "ops",
    [
        {
            "id": "add",
            "name": "add",
            "command-line": "-add [VALUE]",
            "inputs": [{"id": "value", "name": "value", "type": "Number", "value-key": "[VALUE]"}],
        },
        {
            "id": "label",
            "name": "label",
            "command-line": "-label [TEXT]",
            "inputs": [{"id": "text", "name": "text", "type": "String", "value-key": "[TEXT]"}],
        },
        {"id": "nop", "name": "nop", "command-line": "-nop"},
    ],
    optional=True,
    list=True,
)
STYX_LINE = "tool [TRANSFORM] [SMOOTH] [OPS] end"


def _styx(tmp_path: Path, words: list[str]) -> Plan:
    return _plan(tmp_path, STYX_LINE, [TRANSFORM, SMOOTH, OPERATIONS], words)


def test_sub_command_variant_chosen_by_type(tmp_path: Path, isolated: Path) -> None:
    (isolated / "affine.txt").write_text("1")
    plan = _styx(tmp_path, ["--transform", json.dumps({"@type": "inverse", "file": "affine.txt"})])
    assert plan.argv == ["tool", "-t", f"[{isolated / 'affine.txt'},1]", "end"]
    plan = _styx(tmp_path, ["--transform", json.dumps({"@type": "single", "file": "affine.txt"})])
    assert plan.argv == ["tool", "-t", str(isolated / "affine.txt"), "end"]


def test_sub_command_object_type_needs_no_type_key(tmp_path: Path) -> None:
    plan = _styx(tmp_path, ["--smooth", '{"sigma": 2.5, "mode": "fast lane"}'])
    assert plan.argv == ["tool", "-s", "2.5", "--mode", "fast lane", "end"]
    plan = _styx(tmp_path, ["--smooth", '{"@type": "smooth_options", "sigma": "3"}'])
    assert plan.argv == ["tool", "-s", "3", "end"]


def test_list_of_sub_commands_renders_each_in_order(tmp_path: Path) -> None:
    plan = _styx(
        tmp_path,
        [
            "--ops",
            '{"@type": "add", "value": 1}',
            '{"@type": "nop"}',
            '{"@type": "label", "text": "a b"}',
            '{"@type": "add", "value": -0.5}',
        ],
    )
    assert plan.argv == ["tool", "-add", "1", "-nop", "-label", "a b", "-add", "-0.5", "end"]


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[]",
        '{"@type": "mul", "value": 1}',
        '{"value": 1}',  # several variants: @type is needed
        '{"@type": "add"}',  # its own required input
        '{"@type": "add", "value": "x"}',
        '{"@type": "add", "value": 1, "extra": 2}',
        '{"@type": "label", "text": 5}',
        '{"@type": null}',
        '{"@type": ["add"]}',
        '{"@type": {"add": 1}}',
    ],
)
def test_bad_sub_command_values_are_usage_errors(value: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--ops"):
        _styx(tmp_path, ["--ops", value])


def test_lone_surrogate_in_sub_command_json_is_a_usage_error(tmp_path: Path) -> None:
    r"""JSON may spell a lone surrogate (`"\ud800"`): no argv can carry it, so it is a bad value."""
    try:
        plan = _styx(tmp_path, ["--ops", '{"@type": "label", "text": "\\ud800"}'])
    except UsageError:
        return
    pytest.fail(f"rendered {plan.argv!r}")


@pytest.mark.parametrize(
    "words",
    [
        ["--ops", '{"@type": "label", "text": "a\\u0000b"}'],
        ["--smooth", '{"sigma": 1, "mode": "x\\u0000"}'],
    ],
    ids=["list-variant", "object-type"],
)
def test_nul_in_a_value_is_a_usage_error(words: list[str], tmp_path: Path) -> None:
    """No argv word can hold a NUL (exec refuses it); JSON can spell one, so it must be refused
    when the values are checked, not when the program is started."""
    try:
        plan = _styx(tmp_path, words)
    except UsageError:
        return
    assert not any("\0" in word for word in plan.argv), f"argv {plan.argv!r} cannot be executed"


# --- properties -------------------------------------------------------------------------------


# What a command line can carry: any text, and the surrogate-escaped bytes that Python gives for
# arguments that are not UTF-8.
ARGV_TEXT = st.text() | st.binary().map(os.fsdecode)
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY_SETTINGS
@given(value=ARGV_TEXT, glued=st.booleans())
@example(value="--s", glued=False)
@example(value="--", glued=False)
@example(value="", glued=False)
@example(value="a b", glued=False)
@example(value="[S]", glued=True)
def test_string_value_is_exactly_one_word(value: str, glued: bool, tmp_path: Path) -> None:
    words = [f"--s={value}"] if glued else ["--s", value]
    try:
        plan = _plan(tmp_path, "tool -x [S] pre[S]post end", [_input("s")], words)
    except ImcacheError:
        return
    assert plan.argv == ["tool", "-x", value, f"pre{value}post", "end"]


@PROPERTY_SETTINGS
@given(value=st.text(st.characters(codec=None, categories=None)))
def test_string_value_in_a_sub_command_is_exactly_one_word(value: str, tmp_path: Path) -> None:
    """The same for a value that arrives in a sub-command's JSON, which can spell any code point."""
    try:
        plan = _styx(tmp_path, ["--ops", json.dumps({"@type": "label", "text": value})])
    except ImcacheError:
        return
    assert plan.argv == ["tool", "-label", value, "end"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (".", "which names a folder (the entry's own, or one in it), not a file"),
        ("sub/", "which names a folder (the entry's own, or one in it), not a file"),
        ("", "which names no file"),
        ("  ", "which names no file"),
        ("../up.nii", "outside the entry folder"),
    ],
)
def test_an_output_name_that_is_no_file_is_refused_for_what_it_is(
    value: str, problem: str, tmp_path: Path
) -> None:
    """Issue 13 item 10: `--out-file .` names the entry itself and `''` names nothing: neither
    is "outside the entry folder", and neither may reach the tool."""
    with pytest.raises(UsageError) as caught:
        _plan(
            tmp_path,
            "tool [OUT]",
            [_input("out", "String")],
            ["--out", value],
            [{"id": "made", "name": "made", "path-template": "[OUT]"}],
        )
    assert f"output made would be {'named' if not value.strip() else 'written at'} {value!r}" in (
        caught.value.message
    )
    assert problem in caught.value.message
