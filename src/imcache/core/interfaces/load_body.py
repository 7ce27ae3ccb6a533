"""One command line's sections: its `inputs` (a Styx sub-command input holds bodies of its
own), its `output-files` and its `groups`, each read and checked for its shape."""

from __future__ import annotations

from imcache.core.interfaces.crosscheck import WORD_CHARS, check_body
from imcache.core.interfaces.load_outputs import flag_separator, parse_output
from imcache.core.interfaces.model import Body, Extension, GroupSpec, InputSpec, InputType
from imcache.core.interfaces.shape import Context, join, json_type

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

INPUT_KEYS = frozenset(
    [
        "command-line-flag",
        "command-line-flag-separator",
        "default-value",
        "description",
        "disables-inputs",
        "exclusive-maximum",
        "exclusive-minimum",
        "id",
        "integer",
        "list",
        "list-separator",
        "max-list-entries",
        "maximum",
        "min-list-entries",
        "minimum",
        "name",
        "optional",
        "requires-inputs",
        "type",
        "uses-absolute-path",
        "value-choices",
        "value-disables",
        "value-key",
        "value-requires",
        "resolve-parent",
        "mutable",
        "media-types",
    ]
)
GROUP_KEYS = frozenset(
    ["all-or-none", "description", "id", "members", "mutually-exclusive", "name", "one-is-required"]
)
SUB_KEYS = frozenset(
    ["id", "name", "description", "command-line", "inputs", "output-files", "groups"]
)
SCALAR_TYPES: tuple[InputType, ...] = ("File", "String", "Number", "Flag")
# Sub-commands inside sub-commands: NiWrap's deepest are 3 levels; far more would only exhaust
# the stack of the code that walks them, here and when a run renders them.
MAX_NESTING = 32


def parse_body(
    ctx: Context, obj: dict[str, Any], where: str, command_line: str, ext: Extension
) -> Body:
    raw_inputs = obj.get("inputs", [])
    if not isinstance(raw_inputs, list):
        ctx.fail(join(where, "inputs"), "must be a list")
    inputs = tuple(
        _parse_input(ctx, item, f"{join(where, 'inputs')}[{index}]", ext)
        for index, item in enumerate(raw_inputs)
    )
    raw_outputs = obj.get("output-files", [])
    if not isinstance(raw_outputs, list):
        ctx.fail(join(where, "output-files"), "must be a list")
    outputs = tuple(
        parse_output(ctx, item, f"{join(where, 'output-files')}[{index}]")
        for index, item in enumerate(raw_outputs)
    )
    groups = _parse_groups(ctx, obj.get("groups", []), join(where, "groups"))
    body = Body(
        id=ctx.text(obj, "id", join(where, "id"), default=""),
        command_line=command_line,
        inputs=inputs,
        outputs=outputs,
        groups=groups,
    )
    check_body(ctx, body, where, frozenset(ext.template_only))
    return body


def _parse_input(ctx: Context, item: object, where: str, ext: Extension) -> InputSpec:
    obj = ctx.mapping(item, where, INPUT_KEYS)
    input_id = ctx.text(obj, "id", join(where, "id"))
    if not input_id or not all(char in WORD_CHARS for char in input_id):  # [0-9A-Za-z_]+
        ctx.fail(
            join(where, "id"),
            f"{input_id!r} is not an id (Boutiques ids are letters, digits and '_')",
        )
    where = f'{where} (id "{input_id}")'
    value_key = ctx.text(obj, "value-key", join(where, "value-key"))
    input_type, variants = _parse_type(ctx, obj.get("type"), join(where, "type"), ext)
    spec = InputSpec(
        id=input_id,
        name=ctx.text(obj, "name", join(where, "name"), default=input_id),
        type=input_type,
        value_key=value_key,
        description=ctx.text(obj, "description", join(where, "description"), default=""),
        flag=ctx.optional_text(obj, "command-line-flag", where),
        flag_separator=flag_separator(ctx, obj, where),
        # NiWrap leaves `optional` out on most Flags; a Flag is optional by nature, and only an
        # explicit `"optional": false` on one is an error.
        optional=ctx.boolean(obj, "optional", where)
        or (input_type == "Flag" and "optional" not in obj),
        is_list=ctx.boolean(obj, "list", where),
        list_separator=_list_separator(ctx, obj, where),
        min_entries=ctx.count(obj, "min-list-entries", where),
        max_entries=ctx.count(obj, "max-list-entries", where),
        integer=ctx.boolean(obj, "integer", where),
        minimum=ctx.number(obj, "minimum", where),
        maximum=ctx.number(obj, "maximum", where),
        exclusive_minimum=ctx.boolean(obj, "exclusive-minimum", where),
        exclusive_maximum=ctx.boolean(obj, "exclusive-maximum", where),
        choices=_parse_choices(ctx, obj, where),
        default=_default_value(ctx, obj, where),
        requires=ctx.id_list(obj, "requires-inputs", where),
        disables=ctx.id_list(obj, "disables-inputs", where),
        value_requires=_parse_value_map(ctx, obj, "value-requires", where),
        value_disables=_parse_value_map(ctx, obj, "value-disables", where),
        variants=variants,
    )
    _check_input(ctx, spec, where)
    return spec


def _list_separator(ctx: Context, obj: dict[str, Any], where: str) -> str:
    separator = ctx.optional_text(obj, "list-separator", where)
    return " " if separator is None else separator


def _parse_type(
    ctx: Context, value: object, where: str, ext: Extension
) -> tuple[InputType, tuple[Body, ...]]:
    if isinstance(value, str):
        for scalar in SCALAR_TYPES:
            if value == scalar:
                return scalar, ()
        ctx.fail(where, f"unknown type {value!r} (use File, String, Number or Flag)")
    shapes = value if isinstance(value, list) else [value]
    if not shapes or not all(isinstance(shape, dict) for shape in shapes):
        ctx.fail(where, "must be File, String, Number, Flag, or a Styx sub-command object")
    if ctx.nesting >= MAX_NESTING:
        ctx.fail(where, f"sub-commands nested more than {MAX_NESTING} deep")
    ctx.nesting += 1
    variants = []
    for index, shape in enumerate(shapes):
        at = f"{where}[{index}]" if isinstance(value, list) else where
        obj = ctx.mapping(shape, at, SUB_KEYS)
        ctx.text(obj, "id", join(at, "id"))
        command_line = ctx.text(obj, "command-line", join(at, "command-line"), default="")
        variants.append(parse_body(ctx, obj, at, command_line, ext))
    ctx.nesting -= 1
    ids = [variant.id for variant in variants]
    if len(set(ids)) != len(ids):
        ctx.fail(where, "sub-command variants must have distinct ids")
    return "Sub", tuple(variants)


def _parse_choices(
    ctx: Context, obj: dict[str, Any], where: str
) -> tuple[str | int | float, ...] | None:
    if "value-choices" not in obj:
        return None
    choices = obj["value-choices"]
    if not isinstance(choices, list) or not choices:
        ctx.fail(join(where, "value-choices"), "must be a non-empty list")
    for choice in choices:
        if isinstance(choice, bool) or not isinstance(choice, str | int | float):
            ctx.fail(join(where, "value-choices"), f"choice {choice!r} is not a string or number")
    return tuple(choices)


def _parse_value_map(
    ctx: Context, obj: dict[str, Any], key: str, where: str
) -> dict[str, tuple[str, ...]]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        ctx.fail(join(where, key), "must map each choice to a list of ids")
    return {str(choice): ctx.id_list(value, choice, join(where, key)) for choice in value}


def _check_input(ctx: Context, spec: InputSpec, where: str) -> None:
    if spec.type == "Flag":
        if spec.flag is None:
            ctx.fail(where, "a Flag needs a command-line-flag")
        if not spec.optional:
            ctx.fail(join(where, "optional"), "a Flag must be optional")
        if spec.is_list:
            ctx.fail(join(where, "list"), "a Flag cannot be a list")
    if spec.minimum is not None and spec.maximum is not None and spec.minimum > spec.maximum:
        ctx.fail(where, f"minimum ({spec.minimum:g}) is greater than maximum ({spec.maximum:g})")
    low, high = spec.min_entries, spec.max_entries
    if low is not None and high is not None and low > high:
        ctx.fail(where, f"min-list-entries ({low}) is greater than max-list-entries ({high})")
    if (low is not None or high is not None) and not spec.is_list:
        ctx.fail(where, "min/max-list-entries need list: true")
    if spec.choices is not None and spec.default is not None:
        defaults = spec.default if isinstance(spec.default, list) else [spec.default]
        for default in defaults:
            if default not in spec.choices:
                ctx.fail(
                    join(where, "default-value"),
                    f"{default!r} is not one of the value-choices {list(spec.choices)}",
                )
    if (spec.value_requires or spec.value_disables) and spec.choices is None:
        ctx.fail(where, "value-requires/value-disables need value-choices")
    if not spec.optional and (spec.requires or spec.disables):
        ctx.fail(where, "a required input cannot require or disable other inputs")
    if spec.type == "Sub" and spec.default not in (None, []):  # none given: an empty list
        ctx.fail(join(where, "default-value"), "a sub-command input cannot have a default")
    if spec.default is not None:
        _check_default(ctx, spec, join(where, "default-value"))


def _default_value(ctx: Context, obj: dict[str, Any], where: str) -> Any:
    """A list input's default given as one value is a list of that one value, as bosh renders
    it (boutiques' own examples write `"default-value": "x"` on list inputs)."""
    default = obj.get("default-value")
    if default is None and "default-value" in obj:
        ctx.fail(join(where, "default-value"), "must not be null (leave it out for no default)")
    if obj.get("list") is True and default is not None and not isinstance(default, list):
        return [default]
    return default


def _check_default(ctx: Context, spec: InputSpec, where: str) -> None:
    """A default must be a value the input accepts: a run without the option could not fix it."""
    if spec.is_list != isinstance(spec.default, list):
        ctx.fail(where, "must be a list" if spec.is_list else "must not be a list")
    items = spec.default if isinstance(spec.default, list) else [spec.default]
    for item in items:
        if spec.type == "Flag":
            if not isinstance(item, bool):
                ctx.fail(where, "must be true or false for a Flag")
        elif spec.type == "Number":
            _check_default_number(ctx, spec, item, where)
        elif not isinstance(item, str):
            ctx.fail(where, f"must be a string for a {spec.type}, not {json_type(item)}")


def _check_default_number(ctx: Context, spec: InputSpec, item: object, where: str) -> None:
    if isinstance(item, bool) or not isinstance(item, int | float):
        ctx.fail(where, f"{item!r} is not a number")
    problem = spec.number_problem(item)
    if problem:
        ctx.fail(where, f"{item!r}: {problem}")


def _parse_groups(ctx: Context, value: object, where: str) -> tuple[GroupSpec, ...]:
    groups = []
    for at, item in ctx.elements(value, where):
        obj = ctx.mapping(item, at, GROUP_KEYS)
        groups.append(
            GroupSpec(
                id=ctx.text(obj, "id", join(at, "id")),
                members=ctx.id_list(obj, "members", at),
                mutually_exclusive=ctx.boolean(obj, "mutually-exclusive", at),
                one_is_required=ctx.boolean(obj, "one-is-required", at),
                all_or_none=ctx.boolean(obj, "all-or-none", at),
            )
        )
    return tuple(groups)
