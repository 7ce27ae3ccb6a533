"""The loader refuses a broken descriptor with a `DefinitionError` naming the file and the field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imcache.core.errors import DefinitionError
from imcache.core.interfaces.loader import canonical_digest, load_interface
from imcache.core.layout import RECORD


def minimal() -> dict[str, Any]:
    """A small valid descriptor with one of most things: the base every broken case edits."""
    return {
        "name": "tool",
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "a tool",
        "command-line": "tool [FLAG] [LEVEL] [MODE] [IN] [OUT]",
        "inputs": [
            {"id": "in_file", "name": "in", "type": "File", "value-key": "[IN]"},
            {"id": "out", "name": "out", "type": "String", "value-key": "[OUT]"},
            {
                "id": "flag",
                "name": "flag",
                "type": "Flag",
                "optional": True,
                "command-line-flag": "-f",
                "value-key": "[FLAG]",
            },
            {
                "id": "level",
                "name": "level",
                "type": "Number",
                "optional": True,
                "minimum": 0,
                "maximum": 9,
                "command-line-flag": "-l",
                "value-key": "[LEVEL]",
            },
            {
                "id": "mode",
                "name": "mode",
                "type": "String",
                "optional": True,
                "value-choices": ["fast", "slow"],
                "default-value": "fast",
                "value-key": "[MODE]",
            },
        ],
        "output-files": [{"id": "result", "name": "result", "path-template": "[OUT].txt"}],
        "groups": [{"id": "speed", "name": "speed", "members": ["flag", "level"]}],
    }


Edit = Callable[[dict[str, Any]], object]


def _input(data: dict[str, Any], input_id: str) -> dict[str, Any]:
    return next(item for item in data["inputs"] if item["id"] == input_id)


def _set_input(input_id: str, **changes: object) -> Edit:
    def edit(data: dict[str, Any]) -> object:
        _input(data, input_id).update({k.replace("_", "-"): v for k, v in changes.items()})
        return data

    return edit


def _drop_input_key(input_id: str, key: str) -> Edit:
    def edit(data: dict[str, Any]) -> object:
        del _input(data, input_id)[key]
        return data

    return edit


def _set(**changes: object) -> Edit:
    def edit(data: dict[str, Any]) -> object:
        data.update({k.replace("_", "-"): v for k, v in changes.items()})
        return data

    return edit


def _add_input(**item: object) -> Edit:
    def edit(data: dict[str, Any]) -> object:
        data["inputs"].append({k.replace("_", "-"): v for k, v in item.items()})
        return data

    return edit


def _set_output(**changes: object) -> Edit:
    def edit(data: dict[str, Any]) -> object:
        data["output-files"][0].update({k.replace("_", "-"): v for k, v in changes.items()})
        return data

    return edit


# (case id, edit of the valid descriptor (or raw text), fragments that str(error) must contain)
BROKEN: list[tuple[str, Edit | str, tuple[str, ...]]] = [
    ("malformed-json", '{"name": "tool", "command-line": "tool",', ("not valid JSON", "line 1")),
    ("trailing-garbage", '{"name": "tool"} x', ("not valid JSON",)),
    ("top-level-list", "[1, 2]", ("(top level)", "must be a JSON object")),
    ("top-level-string", '"tool"', ("(top level)", "must be a JSON object")),
    (
        "unknown-input-property",
        _set_input("flag", optinal=True),
        ("inputs[2].optinal", "unknown property", "'optional'"),
    ),
    (
        "unknown-top-property",
        _set(comand_line="tool"),
        ("comand-line", "unknown property", "'command-line'"),
    ),
    (
        "duplicate-input-ids",
        _add_input(id="out", name="again", type="String", optional=True, value_key="[OUT]"),
        ("inputs", "'out'", "used twice"),
    ),
    (
        "flag-optional-false",
        _set_input("flag", optional=False),
        ('(id "flag").optional', "must be optional"),
    ),
    (
        "flag-without-flag",
        _drop_input_key("flag", "command-line-flag"),
        ('(id "flag")', "command-line-flag"),
    ),
    (
        "minimum-above-maximum",
        _set_input("level", minimum=10),
        ('(id "level")', "minimum", "maximum"),
    ),
    (
        "min-entries-above-max-entries",
        _set_input("in_file", list=True, min_list_entries=3, max_list_entries=2),
        ('(id "in_file")', "min-list-entries", "max-list-entries"),
    ),
    (
        "default-not-a-choice",
        _set_input("mode", default_value="medium"),
        ('(id "mode").default-value', "'medium'", "value-choices"),
    ),
    (
        "requires-unknown-id",
        _set_input("flag", requires_inputs=["levle"]),
        ('(id "flag")', "requires-inputs", "'levle'", "'level'"),
    ),
    (
        "disables-unknown-id",
        _set_input("flag", disables_inputs=["nope"]),
        ('(id "flag")', "disables-inputs", "'nope'"),
    ),
    (
        "group-member-unknown",
        lambda d: d["groups"][0].update(members=["flag", "lvl"]) or d,
        ('groups (id "speed").members', "'lvl'"),
    ),
    (  # issue 13 item 10: one of the two values was dropped
        "two-inputs-share-a-value-key",
        _set_input("mode", value_key="[LEVEL]"),
        ('(id "mode").value-key', "[LEVEL]", "also the value-key of input 'level'"),
    ),
    (
        "value-key-not-in-command-line",
        _set_input("level", value_key="[LVL]"),
        ('(id "level").value-key', "[LVL]"),
    ),
    (
        "unknown-token-in-command-line",
        _set(command_line="tool [FLAG] [LEVEL] [MODE] [IN] [OUT] [FOO]"),
        ("command-line", "[FOO]"),
    ),
    (
        "absolute-path-template",
        _set_output(path_template="/tmp/x"),
        ('(id "result").path-template', "'/tmp/x'", "absolute"),
    ),
    (
        "dotdot-path-template",
        _set_output(path_template="../[OUT].txt"),
        ('(id "result").path-template', "'..'"),
    ),
    (
        "dotdot-inside-path-template",
        _set_output(path_template="a/../../x"),
        ('(id "result").path-template', "'..'"),
    ),
    ("unknown-type", _set_input("out", type="Text"), ('(id "out").type', "'Text'")),
    ("empty-command-line", _set(command_line=""), ("command-line", "empty")),
    ("blank-command-line", _set(command_line="   "), ("command-line", "empty")),
    (
        "extension-default-unknown-input",
        _set(custom={"imcache": {"defaults": {"outt": "{in_file|stem}.txt"}}}),
        ("custom.imcache.defaults.outt", "'outt'"),
    ),
    (
        "extension-default-empty-list",
        _set(custom={"imcache": {"defaults": {"out": []}}}),
        ("custom.imcache.defaults.out", "non-empty list"),
    ),
    (
        "extension-output-template-unknown-output",
        _set(custom={"imcache": {"output-templates": {"reslt": "{out}.txt"}}}),
        ("custom.imcache.output-templates.reslt", "not the id of an output", "'result'"),
    ),
    (
        "extension-output-template-unknown-input",
        _set(custom={"imcache": {"output-templates": {"result": "{outt}.txt"}}}),
        ("custom.imcache.output-templates.result", "'outt'"),
    ),
    (
        "extension-output-template-climbs-out",
        _set(custom={"imcache": {"output-templates": {"result": "../{out}.txt"}}}),
        ("custom.imcache.output-templates.result", "'..'"),
    ),
    (
        "extension-output-if-any-unknown-input",
        _set(custom={"imcache": {"output-if-any": {"result": ["flag", "flagg"]}}}),
        ("custom.imcache.output-if-any.result", "'flagg'"),
    ),
    (
        "extension-template-only-unknown-input",
        _set(custom={"imcache": {"template-only": ["suffix"]}}),
        ("custom.imcache.template-only", "'suffix'"),
    ),
    (
        "extension-divide-by-zero",
        _set(custom={"imcache": {"formats": {"level": {"printf": "%.3f", "divide-by": 0}}}}),
        ("custom.imcache.formats.level.divide-by", "above 0"),
    ),
    (
        "extension-format-unknown-property",
        _set(custom={"imcache": {"formats": {"level": {"printf": "%.3f", "divide": 2}}}}),
        ("custom.imcache.formats.level.divide", "divide-by"),
    ),
    (
        "extension-map-lacks-a-choice",
        _set(
            custom={
                "imcache": {
                    "maps": {"speed": {"fast": "-f"}},
                    "formats": {"mode": {"map": "speed"}},
                }
            }
        ),
        ("custom.imcache.formats.mode.map", "'speed'", "'slow'"),
    ),
    (
        "extension-map-unknown",
        _set(custom={"imcache": {"formats": {"mode": {"map": "speed"}}}}),
        ("custom.imcache.formats.mode.map", "'speed'", "not a table"),
    ),
    (
        "extension-number-format-on-a-string",
        _set(custom={"imcache": {"formats": {"mode": "%.2f"}}}),
        ("custom.imcache.formats.mode", "'%.2f'", "String"),
    ),
    (
        "extension-format-on-a-file",
        _set(custom={"imcache": {"formats": {"in_file": "%s"}}}),
        ("custom.imcache.formats.in_file", "File"),
    ),
    (
        "extension-divide-a-string",
        _set(custom={"imcache": {"formats": {"mode": {"divide-by": 2}}}}),
        ("custom.imcache.formats.mode.divide-by", "Numbers only"),
    ),
    (
        "shell-redirection-in-command-line",
        _set(command_line="tool [FLAG] [LEVEL] [MODE] [IN] [OUT] > log.txt"),
        ("command-line", "shell syntax (>)", "without a shell"),
    ),
    (
        "shell-quotes-and-list-in-command-line",
        _set(command_line="tool [FLAG] [LEVEL] [MODE] [IN] [OUT] && echo 'done'"),
        ("command-line", "shell syntax (& ')"),
    ),
    *(
        (
            f"shell-syntax-{name}",
            _set(command_line=f"tool [FLAG] [LEVEL]{text}[MODE] [IN] [OUT]"),
            ("command-line", "shell syntax"),
        )
        for name, text in (
            ("newline", "\nrm "),
            ("comment", " # "),
            ("subshell", " ( x ) "),
            ("home", " ~/x "),
            ("glob", " *.nii "),
            ("variable", " $HOME "),
        )
    ),
    (
        "extension-map-on-a-number",
        _set(
            custom={
                "imcache": {
                    "maps": {"levels": {"1": "one"}},
                    "formats": {"level": {"map": "levels", "printf": "%s"}},
                }
            }
        ),
        ("custom.imcache.formats.level.map", "String inputs only"),
    ),
    (
        "extension-count-on-a-single-value",
        _set(custom={"imcache": {"formats": {"level": {"count": "-n %d"}}}}),
        ("custom.imcache.formats.level.count", "list inputs only"),
    ),
    (
        "extension-count-hides-the-number",
        lambda d: _set(custom={"imcache": {"formats": {"out": {"count": "%c"}}}})(
            _input(d, "out").update({"list": True}) or d
        ),
        ("custom.imcache.formats.out.count", "digits"),
    ),
    (
        "template-index-on-a-single-value",
        _set(custom={"imcache": {"defaults": {"out": "{mode[-1]}.txt"}}}),
        ("custom.imcache.defaults.out", "[-1]", "mode"),
    ),
    (
        "file-template-where-the-logs-go",
        _set_output(path_template="stdout.txt", file_template=["x=[OUT]"]),
        ('(id "result").path-template', "'stdout.txt'", "tool's own output"),
    ),
    (
        "flag-spelt-as-a-value-key",
        _set_input("level", command_line_flag="[THR]"),
        ('(id "level").command-line-flag', "[THR]", "looks like a value-key"),
    ),
    (
        "file-template-not-a-list",
        _set_output(file_template="x=[OUT]"),
        ('(id "result").file-template', "list of lines"),
    ),
    (
        "value-key-missing-without-template-only",
        _add_input(id="suffix", name="suffix", type="String", optional=True, value_key="[SUFFIX]"),
        ('(id "suffix").value-key', "[SUFFIX]", "command-line"),
    ),
    # The loader checks a default against value-choices; a default that breaks the input's own
    # type or range is as broken, yet it only surfaces when a run applies it, as a UsageError.
    (
        "default-above-maximum",
        _set_input("level", default_value=42),
        ('(id "level").default-value', "42"),
    ),
    (
        "default-not-a-number",
        _set_input("level", default_value="abc"),
        ('(id "level").default-value', "'abc'"),
    ),
    ("input-without-id", _drop_input_key("out", "id"), ("inputs[1].id", "required")),
    # custom.imcache.companions (issue 13): {input id: [suffix or {suffix, required}, ...]}
    (
        "companions-not-a-list",
        _set(custom={"imcache": {"companions": {"in_file": ".bval"}}}),
        ("custom.imcache.companions.in_file", "non-empty list"),
    ),
    (
        "companion-suffix-without-dot",
        _set(custom={"imcache": {"companions": {"in_file": ["bval"]}}}),
        ("custom.imcache.companions.in_file[0]", "'bval'", "suffix"),
    ),
    (
        "companion-suffix-with-folder",
        _set(custom={"imcache": {"companions": {"in_file": [".x/../y"]}}}),
        ("custom.imcache.companions.in_file[0]", "suffix"),
    ),
    (
        "companion-required-not-boolean",
        _set(custom={"imcache": {"companions": {"in_file": [{"suffix": ".j", "required": 1}]}}}),
        ("custom.imcache.companions.in_file[0].required", "true or false"),
    ),
    (
        "companion-of-unknown-input",
        _set(custom={"imcache": {"companions": {"in_fil": [".bval"]}}}),
        ("custom.imcache.companions.in_fil", "unknown input id"),
    ),
    (
        "companion-of-a-string-input",
        _set(custom={"imcache": {"companions": {"out": [".bval"]}}}),
        ("custom.imcache.companions.out", "File inputs"),
    ),
    ("missing-command-line", lambda d: d.pop("command-line") and d, ("command-line", "required")),
    # Each refusal below is the only test of its check (issue 12: delete any check, a test fails).
    ("input-id-with-a-dash", _set_input("out", id="out-file"), ("inputs[1].id", "not an id")),
    ("flag-list", _set_input("flag", list=True), ('(id "flag").list', "cannot be a list")),
    (
        "list-entries-without-list",
        _set_input("level", min_list_entries=1),
        ('(id "level")', "need list: true"),
    ),
    (
        "value-requires-without-choices",
        _set_input("level", value_requires={"1": ["flag"]}),
        ('(id "level")', "need value-choices"),
    ),
    (
        "required-input-requires",
        _set_input("in_file", requires_inputs=["flag"]),
        ('(id "in_file")', "a required input cannot require"),
    ),
    (
        "sub-command-variants-of-one-id",
        _add_input(
            id="sub", name="sub", optional=True, value_key="[FLAG]", type=[{"id": "a"}, {"id": "a"}]
        ),
        ('inputs[5] (id "sub").type', "distinct ids"),
    ),
    (
        "conditional-path-template",
        lambda d: (
            d["output-files"][0].pop("path-template")
            and _set_output(conditional_path_template=[{"[OUT]": "x"}])(d)
        ),
        ('(id "result").path-template', "conditional-path-template is not supported"),
    ),
    (
        "blank-path-template",
        _set_output(path_template="  "),
        ('(id "result").path-template', "empty"),
    ),
    (
        "path-template-of-the-entry-itself",
        _set_output(path_template="./"),
        ('(id "result").path-template', "the entry folder itself"),
    ),
    (
        "path-template-of-the-record",
        _set_output(path_template=RECORD),
        ('(id "result").path-template', "a name imcache keeps for itself"),
    ),
    (
        "path-template-unknown-value-key",
        _set_output(path_template="[NOPE].txt"),
        ('output-files (id "result").path-template', "[NOPE] is not the value-key"),
    ),
    ("nul-in-a-value", _set(description="a\0b"), ("description", "NUL character")),
    ("nul-in-a-key", _set(custom={"x\0": 1}), ("custom", "key with a NUL character")),
    (
        "environment-variable-name",
        _set(environment_variables=[{"name": "1X", "value": "v"}]),
        ("environment-variables[0].name", "'1X' is not a valid variable name"),
    ),
    (
        "extension-count-not-a-format",
        lambda d: _set(custom={"imcache": {"formats": {"out": {"count": "%s %s"}}}})(
            _input(d, "out").update({"list": True}) or d
        ),
        ("custom.imcache.formats.out.count", "not a format of one whole number"),
    ),
    (
        "extension-env-default-not-a-choice",
        _set(custom={"imcache": {"env": {"OUTTYPE": {"default": "X", "choices": ["A", "B"]}}}}),
        ("custom.imcache.env.OUTTYPE.default", "'X' is not one of ['A', 'B']"),
    ),
    (
        "extension-output-names-unknown-output",
        _set(custom={"imcache": {"output-names": {"reslt": "result_file"}}}),
        ("custom.imcache.output-names.reslt", "not the id of an output"),
    ),
    (
        "extension-output-names-same-name-twice",
        lambda d: _set(custom={"imcache": {"output-names": {"result": "log"}}})(
            d["output-files"].append({"id": "log", "name": "log", "path-template": "x.log"}) or d
        ),
        ("custom.imcache.output-names", "two outputs the same name"),
    ),
    (
        "extension-template-env-undeclared",
        _set(custom={"imcache": {"defaults": {"out": "{in_file|stem}{env.OUTTYPE}"}}}),
        ("custom.imcache.defaults.out", "env.OUTTYPE is not declared"),
    ),
    (
        "extension-template-unknown-filter",
        _set(custom={"imcache": {"defaults": {"out": "{in_file|stme}"}}}),
        ("custom.imcache.defaults.out", "unknown filter 'stme'"),
    ),
]


def _write(tmp_path: Path, content: Edit | str) -> Path:
    path = tmp_path / "defs" / "broken tool.json"
    path.parent.mkdir(exist_ok=True)
    text = content if isinstance(content, str) else json.dumps(content(minimal()), indent=2)
    path.write_text(text)
    return path


def test_minimal_descriptor_loads(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda d: d)
    interface = load_interface(str(path), "test.tool")
    assert interface.name == "test.tool"
    assert interface.source == str(path)
    assert interface.executable == "tool"
    assert [spec.id for spec in interface.inputs] == ["in_file", "out", "flag", "level", "mode"]
    assert interface.body.input("flag").optional
    assert interface.body.input("mode").default == "fast"
    assert [out.id for out in interface.outputs] == ["result"]
    assert len(interface.digest) == 32


def test_smallest_possible_descriptor_loads(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"name": "t", "command-line": "true"}')
    interface = load_interface(str(path), "x.t")
    assert interface.inputs == () and interface.executable == "true"


@pytest.mark.parametrize(
    ("case", "content", "fragments"), BROKEN, ids=[case for case, _, _ in BROKEN]
)
def test_broken_descriptor_is_refused(
    case: str, content: Edit | str, fragments: tuple[str, ...], tmp_path: Path
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(DefinitionError) as caught:
        load_interface(str(path), "test.tool")
    message = str(caught.value)
    assert caught.value.source == str(path)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


def test_unreadable_file_is_a_definition_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(DefinitionError, match="cannot read") as caught:
        load_interface(str(missing), "test.tool")
    assert str(missing) in str(caught.value)


def test_not_utf8_is_a_definition_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"name": "caf\xe9", "command-line": "t"}'.encode("latin-1"))
    with pytest.raises(DefinitionError) as caught:
        load_interface(str(path), "test.tool")
    assert str(path) in str(caught.value)


# --- the definition digest -----------------------------------------------------------------


def _leaves(data: object, path: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _changed(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    return f"{value}x"


def _load(tmp_path: Path, data: object, text: str | None = None) -> str:
    path = tmp_path / "digest.json"
    path.write_text(text if text is not None else json.dumps(data))
    return load_interface(str(path), "test.tool").digest


def _with_extension() -> dict[str, Any]:
    data = minimal()
    data["custom"] = {
        "imcache": {"defaults": {"out": "{in_file|stem}_out"}, "formats": {"level": "%.1f"}}
    }
    return data


def test_digest_changes_when_any_field_changes(tmp_path: Path) -> None:
    base = _with_extension()
    digest = _load(tmp_path, base)
    checked = 0
    for leaf in _leaves(base):
        edited = copy.deepcopy(base)
        holder: Any = edited
        for step in leaf[:-1]:
            holder = holder[step]
        holder[leaf[-1]] = _changed(holder[leaf[-1]])
        try:
            other = _load(tmp_path, edited)
        except DefinitionError:
            continue  # e.g. a renamed value-key no longer matches the command line
        assert other != digest, f"changing {leaf} kept the digest"
        checked += 1
    assert checked >= 20


def test_digest_changes_when_a_field_is_added_or_removed(tmp_path: Path) -> None:
    base = minimal()
    digest = _load(tmp_path, base)
    assert _load(tmp_path, {**base, "url": "https://example.org"}) != digest
    without = copy.deepcopy(base)
    del without["description"]
    assert _load(tmp_path, without) != digest
    assert _load(tmp_path, {**base, "custom": {"other-tool": {"x": 1}}}) != digest


def test_digest_ignores_key_order_and_white_space(tmp_path: Path) -> None:
    base = _with_extension()
    digest = _load(tmp_path, base)

    def reverse(value: object) -> object:
        if isinstance(value, dict):
            return {key: reverse(value[key]) for key in reversed(list(value))}
        if isinstance(value, list):
            return [reverse(item) for item in value]
        return value

    assert _load(tmp_path, None, json.dumps(reverse(base))) == digest
    assert _load(tmp_path, None, json.dumps(base, indent=7)) == digest
    assert _load(tmp_path, None, json.dumps(base, separators=(",", ":"))) == digest
    assert _load(tmp_path, None, "\n\n  " + json.dumps(base, indent="\t") + "\n\t \n") == digest
    assert _load(tmp_path, None, json.dumps(base, ensure_ascii=True)) == canonical_digest(base)


def test_digest_keeps_list_order(tmp_path: Path) -> None:
    """Inputs are ordered (list order is meaning), unlike object keys."""
    base = minimal()
    swapped = copy.deepcopy(base)
    swapped["inputs"][0], swapped["inputs"][1] = swapped["inputs"][1], swapped["inputs"][0]
    assert _load(tmp_path, swapped) != _load(tmp_path, base)


def test_list_default_given_as_one_value_is_a_one_item_list(tmp_path: Path) -> None:
    """As bosh renders it: boutiques' own examples write one value as a list input's default."""

    def edit(data: dict[str, Any]) -> object:
        _input(data, "mode").update({"list": True, "default-value": "fast"})
        return data

    interface = load_interface(str(_write(tmp_path, edit)), "test.tool")
    assert interface.body.input("mode").default == ["fast"]

    def bad(data: dict[str, Any]) -> object:
        _input(data, "mode").update({"list": True, "default-value": "medium"})
        return data

    with pytest.raises(DefinitionError, match="medium"):
        load_interface(str(_write(tmp_path, bad)), "test.tool")


def test_mutually_exclusive_inputs_may_share_a_value_key(tmp_path: Path) -> None:
    """Issue 13 item 10's refusal spares what boutiques' own good.json does: one value-key for
    a file given in either of two formats, never both (a mutually-exclusive group)."""

    def edit(data: dict[str, Any]) -> object:
        _input(data, "mode")["value-key"] = "[LEVEL]"
        del _input(data, "mode")["default-value"]
        data["command-line"] = "tool [FLAG] [LEVEL] [IN] [OUT]"
        data["groups"] = [
            {"id": "one", "name": "one", "members": ["level", "mode"], "mutually-exclusive": True}
        ]
        return data

    interface = load_interface(str(_write(tmp_path, edit)), "test.tool")
    assert interface.body.input("mode").value_key == "[LEVEL]"


def test_an_input_requiring_another_may_share_its_value_key_when_listed_first(
    tmp_path: Path,
) -> None:
    """fsl.Threshold's use_nonzero_voxels (-thrP) requires use_robust_range (-thrp) and, listed
    first, always takes their one value-key over it: a refinement, not a value dropped by
    mistake. Listed second it would be the one dropped: still refused."""
    import imcache

    shipped = Path(imcache.__file__).parent / "core/interfaces/catalogue/fsl/Threshold.json"
    data = json.loads(shipped.read_text())
    assert load_interface(str(shipped), "fsl.Threshold").body.input("use_nonzero_voxels")
    ids = [spec["id"] for spec in data["inputs"]]
    first, second = ids.index("use_nonzero_voxels"), ids.index("use_robust_range")
    assert first < second
    inputs = data["inputs"]
    inputs[first], inputs[second] = inputs[second], inputs[first]
    swapped = tmp_path / "Threshold.json"
    swapped.write_text(json.dumps(data))
    with pytest.raises(DefinitionError, match="also the value-key of input 'use_robust_range'"):
        load_interface(str(swapped), "fsl.Threshold")


# --- a key given twice -------------------------------------------------------------------------

STRING_INPUT = '{"id": "x", "name": "x", "type": "String", "value-key": "[X]"'
REPEATED = [
    ("top-level", '{"name": "a", "command-line": "true", "name": "b"}', "name"),
    (
        "in-an-input",
        f'{{"name": "t", "command-line": "t [X]", "inputs": [{STRING_INPUT},'
        ' "optional": true, "optional": false}]}',
        "inputs[0].optional",
    ),
    (
        "deep-in-the-extension",
        '{"name": "t", "command-line": "t", "custom": {"imcache": '
        '{"maps": {"ext": {"a": ".nii", "b": ".mif", "a": ".gz"}}}}}',
        "custom.imcache.maps.ext.a",
    ),
    (
        "an-object-given-twice",
        '{"name": "t", "command-line": "t", "custom": {"imcache": {}}, "custom": {"x": 1}}',
        "custom",
    ),
]


@pytest.mark.parametrize(("case", "text", "field"), REPEATED, ids=[c for c, _, _ in REPEATED])
def test_a_repeated_key_is_refused(case: str, text: str, field: str, tmp_path: Path) -> None:
    """JSON keeps the last of two equal keys without a word: the first would silently not count."""
    path = _write(tmp_path, text)
    with pytest.raises(DefinitionError) as caught:
        load_interface(str(path), "test.tool")
    message = str(caught.value)
    assert caught.value.field == field
    assert message.startswith(f"{path}: {field}: is given twice"), message
    assert "\n" not in message


def test_equal_keys_in_different_objects_are_fine(tmp_path: Path) -> None:
    path = _write(tmp_path, lambda data: data)  # every input has an id, a name and a type
    assert len(load_interface(str(path), "test.tool").inputs) == 5


@pytest.mark.parametrize("field", ["command-line", "description"])
def test_a_lone_surrogate_escape_is_refused_where_a_pair_is_text(
    tmp_path: Path, field: str
) -> None:
    """Found by review: `"ec\\ud800o"` names no character, so no file name, argument or line of
    output can hold it; it was exit 3 (UnicodeEncodeError) in `which` and in `--dry-run`'s
    output. A surrogate pair (an emoji written as two escapes) is text like any other."""
    definition = {
        "name": "echo",
        "tool-version": "1",
        "schema-version": "0.5",
        "description": "says a word",
        "command-line": "echo [WORD]",
        "inputs": [{"id": "word", "name": "word", "type": "String", "value-key": "[WORD]"}],
        "output-files": [],
    }
    lone, pair = dict(definition), dict(definition)
    lone[field] = "ec\ud800ho [WORD]" if field == "command-line" else "says \ud800"
    pair[field] = "echo [WORD]" if field == "command-line" else "says \U0001f600"
    (tmp_path / "Lone.json").write_text(json.dumps(lone))
    (tmp_path / "Pair.json").write_text(json.dumps(pair))
    assert "\\ud800" in (tmp_path / "Lone.json").read_text()
    with pytest.raises(DefinitionError, match=r"holds a lone surrogate escape"):
        load_interface(str(tmp_path / "Lone.json"), "t.Lone")
    assert load_interface(str(tmp_path / "Pair.json"), "t.Pair").name == "t.Pair"
