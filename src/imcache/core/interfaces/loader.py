"""Read a Boutiques descriptor (schema 0.5, and NiWrap's 0.5+styx) into an `Interface`.

Every problem raises `DefinitionError` naming the file and the field, so that the author of a
definition can fix it without reading imcache's code.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Iterator
from typing import Any, NoReturn, cast

import xxhash

from imcache.core.datatype import datatype, replace
from imcache.core.datatype import field as record_field
from imcache.core.errors import DefinitionError
from imcache.core.interfaces.model import (
    Body,
    CompanionSpec,
    EnvSpec,
    Extension,
    GroupSpec,
    InputSpec,
    InputType,
    Interface,
    OutputSpec,
    Rule,
)
from imcache.core.interfaces.templates import FIELD, key_pattern, template_fields
from imcache.core.layout import LOGS, RESERVED, STDERR_LOG, STDOUT_LOG

# Boutiques 0.5 properties, plus the few that NiWrap's descriptors add. Anything else is refused,
# because a misspelt key ("optinal") would otherwise silently change what a definition means.
TOP_KEYS = frozenset(
    [
        "author",
        "command-line",
        "container-image",
        "custom",
        "deprecated-by-doi",
        "description",
        "descriptor-url",
        "doi",
        "environment-variables",
        "error-codes",
        "groups",
        "inputs",
        "invocation-schema",
        "name",
        "online-platform-urls",
        "output-files",
        "schema-version",
        "shell",
        "suggested-resources",
        "tags",
        "tests",
        "tool-doi",
        "tool-version",
        "url",
        "stdout-output",
        "stderr-output",
    ]
)
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
OUTPUT_KEYS = frozenset(
    [
        "command-line-flag",
        "command-line-flag-separator",
        "conditional-path-template",
        "description",
        "file-template",
        "id",
        "list",
        "name",
        "optional",
        "path-template",
        "path-template-stripped-extensions",
        "uses-absolute-path",
        "value-key",
    ]
)
GROUP_KEYS = frozenset(
    ["all-or-none", "description", "id", "members", "mutually-exclusive", "name", "one-is-required"]
)
SUB_KEYS = frozenset(
    ["id", "name", "description", "command-line", "inputs", "output-files", "groups"]
)
EXTENSION_KEYS = frozenset(
    [
        "defaults",
        "maps",
        "formats",
        "env",
        "rules",
        "tool-check",
        "output-names",
        "output-templates",
        "output-if-any",
        "template-only",
        "companions",
    ]
)
SCALAR_TYPES = ("File", "String", "Number", "Flag")
# Files imcache itself writes into every entry folder: no output may take these names.
# (`stdout.txt` as a template is NiWrap's way to name the captured stdout, and means just that.)
INPUT_ID = re.compile(r"[0-9A-Za-z_]+")
# What a shell would read as more than words: redirections, lists, quotes, variables, globs.
SHELL_SYNTAX = frozenset("<>|&;`$\"'\\*?#()~\n")
# A value-key looks like [NAME]; `[1]` (an AFNI sub-brick selector) is text, not a key.
COMPANION_SUFFIX = re.compile(r"\.[^/\0]+")  # `.bval`, `_sbref.json`-like names start with a dot
VALUE_KEY_IN_TEXT = re.compile(r"\[[A-Za-z_][A-Za-z0-9_]*\]")


def load_interface(path: str, name: str) -> Interface:
    """Load the descriptor at `path` as the interface `name` (PACKAGE.Name)."""
    from imcache.core.interfaces.definition_file import read_definition  # issue 13: bounded

    raw = read_definition(path)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DefinitionError(
            path, "", f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DefinitionError(path, "", "not UTF-8 text") from exc
    except RecursionError:
        raise DefinitionError(path, "", "nested too deeply to be a definition") from None
    return parse_descriptor(data, path, name)


def _refuse_nul(ctx: _Context, data: object) -> None:
    """No command line, path or environment can carry a NUL: refuse it wherever it is."""
    pending: list[tuple[object, str]] = [(data, "")]
    while pending:  # a loop, not recursion: a definition nested deep must not crash us
        item, where = pending.pop()
        if isinstance(item, str) and "\0" in item:
            ctx.fail(where, "contains a NUL character, which no command line can carry")
        elif isinstance(item, dict):
            for key, value in item.items():
                if "\0" in key:
                    ctx.fail(where, "has a key with a NUL character")
                pending.append((value, _join(where, str(key))))
        elif isinstance(item, list):
            pending += [(value, f"{where}[{index}]") for index, value in enumerate(item)]


def canonical_digest(data: object) -> str:
    """The xxh3-128 of the descriptor's canonical JSON: key order and white space do not count."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest: str = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))
    return digest


def parse_descriptor(data: object, source: str, name: str) -> Interface:
    ctx = _Context(source)
    _refuse_nul(ctx, data)
    obj = ctx.mapping(data, "", TOP_KEYS)
    command_line = ctx.text(obj, "command-line", "command-line")
    if not command_line.split():
        ctx.fail("command-line", "is empty")
    extension = _parse_extension(ctx, obj.get("custom"))
    body = _apply_output_names(ctx, _parse_body(ctx, obj, "", command_line, extension), extension)
    interface = Interface(
        name=name,
        source=source,
        digest=canonical_digest(data),
        tool_name=ctx.text(obj, "name", "name"),
        description=str(obj.get("description", "")),
        body=body,
        fixed_env=_parse_fixed_env(ctx, obj.get("environment-variables")),
        stdout_output=_parse_stream_output(ctx, obj, "stdout-output", STDOUT_LOG),
        stderr_output=_parse_stream_output(ctx, obj, "stderr-output", STDERR_LOG),
        extension=extension,
        version=str(obj.get("tool-version", "")),
    )
    _check_ids_unique(ctx, interface)
    _check_extension_refs(ctx, interface)
    return interface


class _Context:
    """Where we are in the file, for error messages that point at the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> NoReturn:
        raise DefinitionError(self.source, field, problem)

    def mapping(self, value: object, where: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where or "(top level)", "must be a JSON object")
        obj = cast(dict[str, Any], value)
        for key in obj:
            if key not in allowed:
                self.fail(_join(where, key), f"unknown property{_suggest(key, allowed)}")
        return obj

    def text(self, obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        if key not in obj:
            if default is not None:
                return default
            self.fail(where, "is required")
        value = obj[key]
        if not isinstance(value, str):
            self.fail(where, f"must be a string, not {_json_type(value)}")
        return value

    def boolean(self, obj: dict[str, Any], key: str, where: str) -> bool:
        value = obj.get(key, False)
        if not isinstance(value, bool):
            self.fail(_join(where, key), f"must be true or false, not {_json_type(value)}")
        return value

    def number(self, obj: dict[str, Any], key: str, where: str) -> float | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(_join(where, key), f"must be a number, not {_json_type(value)}")
        if not math.isfinite(value):
            self.fail(_join(where, key), f"must be a finite number, not {value}")
        return cast(float, value)

    def count(self, obj: dict[str, Any], key: str, where: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(_join(where, key), "must be a whole number >= 0")
        return value

    def id_list(self, obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = obj.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(_join(where, key), "must be a list of ids")
        return tuple(value)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _json_type(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def _parse_body(
    ctx: _Context, obj: dict[str, Any], where: str, command_line: str, ext: Extension
) -> Body:
    raw_inputs = obj.get("inputs", [])
    if not isinstance(raw_inputs, list):
        ctx.fail(_join(where, "inputs"), "must be a list")
    inputs = tuple(
        _parse_input(ctx, item, f"{_join(where, 'inputs')}[{index}]", ext)
        for index, item in enumerate(raw_inputs)
    )
    raw_outputs = obj.get("output-files", [])
    if not isinstance(raw_outputs, list):
        ctx.fail(_join(where, "output-files"), "must be a list")
    outputs = tuple(
        _parse_output(ctx, item, f"{_join(where, 'output-files')}[{index}]")
        for index, item in enumerate(raw_outputs)
    )
    groups = _parse_groups(ctx, obj.get("groups", []), _join(where, "groups"))
    body = Body(
        id=str(obj.get("id", "")),
        command_line=command_line,
        inputs=inputs,
        outputs=outputs,
        groups=groups,
    )
    _check_body(ctx, body, where, frozenset(ext.template_only))
    return body


def _parse_input(ctx: _Context, item: object, where: str, ext: Extension) -> InputSpec:
    obj = ctx.mapping(item, where, INPUT_KEYS)
    input_id = ctx.text(obj, "id", _join(where, "id"))
    if not INPUT_ID.fullmatch(input_id):
        ctx.fail(
            _join(where, "id"),
            f"{input_id!r} is not an id (Boutiques ids are letters, digits and '_')",
        )
    where = f'{where} (id "{input_id}")'
    value_key = ctx.text(obj, "value-key", _join(where, "value-key"))
    input_type, variants = _parse_type(ctx, obj.get("type"), _join(where, "type"), ext)
    spec = InputSpec(
        id=input_id,
        name=str(obj.get("name", input_id)),
        type=input_type,
        value_key=value_key,
        description=str(obj.get("description", "")),
        flag=_optional_text(ctx, obj, "command-line-flag", where),
        flag_separator=_flag_separator(ctx, obj, where),
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
        default=_default_value(obj),
        requires=ctx.id_list(obj, "requires-inputs", where),
        disables=ctx.id_list(obj, "disables-inputs", where),
        value_requires=_parse_value_map(ctx, obj, "value-requires", where),
        value_disables=_parse_value_map(ctx, obj, "value-disables", where),
        variants=variants,
    )
    _check_input(ctx, spec, where)
    return spec


def _optional_text(ctx: _Context, obj: dict[str, Any], key: str, where: str) -> str | None:
    if key not in obj:
        return None
    return ctx.text(obj, key, _join(where, key))


def _flag_separator(ctx: _Context, obj: dict[str, Any], where: str) -> str:
    separator = _optional_text(ctx, obj, "command-line-flag-separator", where)
    return " " if separator is None else separator


def _list_separator(ctx: _Context, obj: dict[str, Any], where: str) -> str:
    separator = _optional_text(ctx, obj, "list-separator", where)
    return " " if separator is None else separator


def _parse_type(
    ctx: _Context, value: object, where: str, ext: Extension
) -> tuple[InputType, tuple[Body, ...]]:
    if isinstance(value, str):
        if value not in SCALAR_TYPES:
            ctx.fail(where, f"unknown type {value!r} (use File, String, Number or Flag)")
        return cast(InputType, value), ()
    shapes = value if isinstance(value, list) else [value]
    if not shapes or not all(isinstance(shape, dict) for shape in shapes):
        ctx.fail(where, "must be File, String, Number, Flag, or a Styx sub-command object")
    variants = []
    for index, shape in enumerate(shapes):
        at = f"{where}[{index}]" if isinstance(value, list) else where
        obj = ctx.mapping(shape, at, SUB_KEYS)
        ctx.text(obj, "id", _join(at, "id"))
        command_line = ctx.text(obj, "command-line", _join(at, "command-line"), default="")
        variants.append(_parse_body(ctx, obj, at, command_line, ext))
    ids = [variant.id for variant in variants]
    if len(set(ids)) != len(ids):
        ctx.fail(where, "sub-command variants must have distinct ids")
    return "Sub", tuple(variants)


def _parse_choices(
    ctx: _Context, obj: dict[str, Any], where: str
) -> tuple[str | int | float, ...] | None:
    if "value-choices" not in obj:
        return None
    choices = obj["value-choices"]
    if not isinstance(choices, list) or not choices:
        ctx.fail(_join(where, "value-choices"), "must be a non-empty list")
    for choice in choices:
        if isinstance(choice, bool) or not isinstance(choice, str | int | float):
            ctx.fail(_join(where, "value-choices"), f"choice {choice!r} is not a string or number")
    return tuple(choices)


def _parse_value_map(
    ctx: _Context, obj: dict[str, Any], key: str, where: str
) -> dict[str, tuple[str, ...]]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        ctx.fail(_join(where, key), "must map each choice to a list of ids")
    return {str(choice): ctx.id_list(value, choice, _join(where, key)) for choice in value}


def _check_input(ctx: _Context, spec: InputSpec, where: str) -> None:
    if spec.type == "Flag":
        if spec.flag is None:
            ctx.fail(where, "a Flag needs a command-line-flag")
        if not spec.optional:
            ctx.fail(_join(where, "optional"), "a Flag must be optional")
        if spec.is_list:
            ctx.fail(_join(where, "list"), "a Flag cannot be a list")
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
                    _join(where, "default-value"),
                    f"{default!r} is not one of the value-choices {list(spec.choices)}",
                )
    if (spec.value_requires or spec.value_disables) and spec.choices is None:
        ctx.fail(where, "value-requires/value-disables need value-choices")
    if not spec.optional and (spec.requires or spec.disables):
        ctx.fail(where, "a required input cannot require or disable other inputs")
    if spec.type == "Sub" and spec.default not in (None, []):  # none given: an empty list
        ctx.fail(_join(where, "default-value"), "a sub-command input cannot have a default")
    if spec.default is not None:
        _check_default(ctx, spec, _join(where, "default-value"))


def _default_value(obj: dict[str, Any]) -> Any:
    """A list input's default given as one value is a list of that one value, as bosh renders
    it (boutiques' own examples write `"default-value": "x"` on list inputs)."""
    default = obj.get("default-value")
    if obj.get("list") is True and default is not None and not isinstance(default, list):
        return [default]
    return default


def _check_default(ctx: _Context, spec: InputSpec, where: str) -> None:
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
            ctx.fail(where, f"must be a string for a {spec.type}, not {_json_type(item)}")


def _check_default_number(ctx: _Context, spec: InputSpec, item: object, where: str) -> None:
    if isinstance(item, bool) or not isinstance(item, int | float):
        ctx.fail(where, f"{item!r} is not a number")
    problem = spec.number_problem(item)
    if problem:
        ctx.fail(where, f"{item!r}: {problem}")


def _parse_output(ctx: _Context, item: object, where: str) -> OutputSpec:
    obj = ctx.mapping(item, where, OUTPUT_KEYS)
    output_id = ctx.text(obj, "id", _join(where, "id"))
    where = f'{where} (id "{output_id}")'
    file_template = obj.get("file-template")
    if file_template is not None and (
        not isinstance(file_template, list) or not all(isinstance(x, str) for x in file_template)
    ):
        ctx.fail(_join(where, "file-template"), "must be a list of lines (strings)")
    if file_template is not None and obj.get("path-template") in LOGS:
        ctx.fail(
            _join(where, "path-template"),
            f"{obj['path-template']!r} holds the tool's own output; a file-template needs "
            "another name",
        )
    if "path-template" not in obj:
        # conditional-path-template evaluates Python expressions; imcache never evaluates code
        # from a definition, so such an output is refused, not half supported.
        ctx.fail(
            _join(where, "path-template"),
            "is required (conditional-path-template is not supported)",
        )
    template = ctx.text(obj, "path-template", _join(where, "path-template"))
    _check_template_stays_inside(ctx, template, _join(where, "path-template"))
    stripped = obj.get("path-template-stripped-extensions", [])
    if not isinstance(stripped, list) or not all(isinstance(s, str) for s in stripped):
        ctx.fail(_join(where, "path-template-stripped-extensions"), "must be a list of strings")
    return OutputSpec(
        id=output_id,
        name=str(obj.get("name", output_id)),
        path_template=template,
        description=str(obj.get("description", "")),
        optional=ctx.boolean(obj, "optional", where),
        is_list=ctx.boolean(obj, "list", where),
        stripped_extensions=tuple(stripped),
        value_key=_optional_text(ctx, obj, "value-key", where),
        flag=_optional_text(ctx, obj, "command-line-flag", where),
        flag_separator=_flag_separator(ctx, obj, where),
        file_template=None if file_template is None else tuple(file_template),
    )


def _check_template_stays_inside(ctx: _Context, template: str, where: str) -> None:
    """Outputs live in the entry folder: an absolute or `..` template would write elsewhere."""
    if not template.strip():
        ctx.fail(where, "is empty")
    if template.startswith(("/", "~")):
        ctx.fail(where, f"{template!r} is absolute; outputs must stay inside the entry folder")
    if ".." in template.replace("\\", "/").split("/"):
        ctx.fail(
            where, f"{template!r} climbs out with '..'; outputs must stay inside the entry folder"
        )
    if posixpath.normpath(template) == ".":
        ctx.fail(where, f"{template!r} names the entry folder itself, not an output in it")
    if posixpath.normpath(template) in RESERVED:
        ctx.fail(where, f"{template!r} is a name imcache keeps for itself in every entry")


def _parse_groups(ctx: _Context, value: object, where: str) -> tuple[GroupSpec, ...]:
    if not isinstance(value, list):
        ctx.fail(where, "must be a list")
    groups = []
    for index, item in enumerate(cast(list[object], value)):
        at = f"{where}[{index}]"
        obj = ctx.mapping(item, at, GROUP_KEYS)
        groups.append(
            GroupSpec(
                id=ctx.text(obj, "id", _join(at, "id")),
                members=ctx.id_list(obj, "members", at),
                mutually_exclusive=ctx.boolean(obj, "mutually-exclusive", at),
                one_is_required=ctx.boolean(obj, "one-is-required", at),
                all_or_none=ctx.boolean(obj, "all-or-none", at),
            )
        )
    return tuple(groups)


def _may_share_a_value_key(body: Body, first: str, second: str) -> bool:
    """Whether two inputs (`first` listed before `second`) may share a value-key: they can never
    both be given (as boutiques' own examples do for one file in either of two formats), or the
    first requires the second and so, listed first, always takes the key over it (a refinement:
    fsl.Threshold's use_nonzero_voxels turns use_robust_range's -thrp into -thrP)."""
    for group in body.groups:
        if group.mutually_exclusive and {first, second} <= set(group.members):
            return True
    if second in body.input(first).requires:
        return True
    return second in body.input(first).disables or first in body.input(second).disables


def _check_body(
    ctx: _Context, body: Body, where: str, template_only: frozenset[str] = frozenset()
) -> None:
    """Cross-references inside one command line: value-keys and ids must all resolve."""
    input_ids = {spec.id for spec in body.inputs}
    group_ids = {group.id for group in body.groups}
    known_keys = body.value_keys()
    file_lines = "\n".join(line for out in body.outputs for line in out.file_template or ())
    owners: dict[str, str] = {}  # value-key -> the input it belongs to
    for spec in body.inputs:
        at = _join(where, f'inputs (id "{spec.id}")')
        owner = owners.get(spec.value_key, spec.id)  # one id twice is _check_ids_unique's
        if owner != spec.id and not _may_share_a_value_key(body, owner, spec.id):
            ctx.fail(
                _join(at, "value-key"),
                f"{spec.value_key} is also the value-key of input {owner!r}, and both may be "
                "given: the command line would take one value and drop the other; give each "
                "input a value-key of its own (or make the two mutually exclusive)",
            )
        owners.setdefault(spec.value_key, spec.id)
        on_command_line = spec.value_key in body.command_line or spec.value_key in file_lines
        if not on_command_line and spec.id not in template_only:
            ctx.fail(
                _join(at, "value-key"),
                f"{spec.value_key} does not appear in the command-line (nor in a file-template)",
            )
        references = [("requires-inputs", spec.requires, input_ids | group_ids)]
        references.append(("disables-inputs", spec.disables, input_ids))
        for choice, refs in spec.value_requires.items():
            references.append((f"value-requires.{choice}", refs, input_ids))
        for choice, refs in spec.value_disables.items():
            references.append((f"value-disables.{choice}", refs, input_ids))
        for field, refs, known in references:
            for ref in refs:
                if ref not in known:
                    ctx.fail(
                        _join(at, field),
                        f"unknown input id {ref!r}{_suggest(ref, input_ids)}",
                    )
    for key in VALUE_KEY_IN_TEXT.findall(body.command_line):
        if key not in known_keys:
            ctx.fail(_join(where, "command-line"), f"{key} is not the value-key of any input")
    _check_no_shell_syntax(ctx, body.command_line, known_keys, _join(where, "command-line"))
    for spec in body.inputs:
        if spec.flag is not None and VALUE_KEY_IN_TEXT.fullmatch(spec.flag):
            ctx.fail(
                _join(where, f'inputs (id "{spec.id}").command-line-flag'),
                f"{spec.flag} looks like a value-key, but a flag is passed as it is written: "
                f"the tool would get the word {spec.flag}",
            )
    for out in body.outputs:
        for key in VALUE_KEY_IN_TEXT.findall(out.path_template):
            if key not in known_keys:
                ctx.fail(
                    _join(where, f'output-files (id "{out.id}").path-template'),
                    f"{key} is not the value-key of any input",
                )
    for group in body.groups:
        for member in group.members:
            if member not in input_ids:
                ctx.fail(
                    _join(where, f'groups (id "{group.id}").members'),
                    f"unknown input id {member!r}{_suggest(member, input_ids)}",
                )


def _check_no_shell_syntax(ctx: _Context, template: str, keys: set[str], where: str) -> None:
    """bosh hands its command line to a shell; imcache never does. A template that needs one
    (a redirection, `&&`, quotes, a variable, a glob) would run a different command here."""
    text = key_pattern(keys).sub(" ", template)
    found = sorted({char for char in text if char in SHELL_SYNTAX})
    if found:
        ctx.fail(
            where,
            f"uses shell syntax ({' '.join(found)}), but imcache runs the tool without a shell; "
            "wrap such a command in a script and describe the script",
        )


def _suggest(word: str, candidates: set[str] | frozenset[str]) -> str:
    import difflib  # only for a misspelt name

    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_fixed_env(ctx: _Context, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, list):
        ctx.fail("environment-variables", "must be a list of {name, value} objects")
    env = {}
    for index, item in enumerate(cast(list[object], value)):
        at = f"environment-variables[{index}]"
        obj = ctx.mapping(item, at, frozenset({"name", "value", "description"}))
        name = ctx.text(obj, "name", _join(at, "name"))
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            ctx.fail(_join(at, "name"), f"{name!r} is not a valid variable name")
        env[name] = ctx.text(obj, "value", _join(at, "value"))
    return env


def _parse_stream_output(
    ctx: _Context, obj: dict[str, Any], key: str, file_name: str
) -> OutputSpec | None:
    if key not in obj:
        return None
    stream = ctx.mapping(obj[key], key, frozenset({"id", "name", "description"}))
    output_id = ctx.text(stream, "id", _join(key, "id"))
    return OutputSpec(
        id=output_id,
        name=str(stream.get("name", output_id)),
        path_template=file_name,
        description=str(stream.get("description", "")),
    )


def _all_ids(interface: Interface) -> Iterator[tuple[str, str]]:
    body = interface.body
    yield from (("inputs", spec.id) for spec in body.inputs)
    yield from (("output-files", out.id) for out in body.outputs)
    yield from (("groups", group.id) for group in body.groups)
    for stream in (interface.stdout_output, interface.stderr_output):
        if stream is not None:
            yield ("stdout-output/stderr-output", stream.id)


def _check_ids_unique(ctx: _Context, interface: Interface) -> None:
    """Ids are unique among inputs and groups, and among outputs.

    Boutiques also forbids an output sharing an input's id, but real descriptors (NiWrap's among
    them) do it, and imcache keeps the two apart (`--option` versus `--get`), so that is allowed.
    """
    seen: dict[tuple[bool, str], str] = {}
    for section, item_id in _all_ids(interface):
        space = (section in ("inputs", "groups"), item_id)
        if space in seen:
            ctx.fail(section, f"id {item_id!r} is used twice (also in {seen[space]})")
        seen[space] = section


# --- the imcache extension: custom.imcache ---------------------------------------------------


def _parse_extension(ctx: _Context, custom: object) -> Extension:
    if custom is None:
        return Extension()
    if not isinstance(custom, dict):
        ctx.fail("custom", "must be a JSON object")
    raw = cast(dict[str, Any], custom).get("imcache")
    if raw is None:
        return Extension()
    where = "custom.imcache"
    obj = ctx.mapping(raw, where, EXTENSION_KEYS)
    tool_check = obj.get("tool-check", "mtime")
    if tool_check not in ("mtime", "content"):
        ctx.fail(_join(where, "tool-check"), "must be 'mtime' or 'content'")
    formats = _parse_formats(ctx, obj.get("formats", {}), _join(where, "formats"))
    if_any = _object(ctx, obj.get("output-if-any", {}), _join(where, "output-if-any"))
    return Extension(
        defaults=_parse_defaults(ctx, obj.get("defaults", {}), _join(where, "defaults")),
        maps={
            name: _string_map(ctx, table, f"{where}.maps.{name}")
            for name, table in _object(ctx, obj.get("maps", {}), _join(where, "maps")).items()
        },
        formats=formats.printf,
        divisors=formats.divisors,
        value_maps=formats.maps,
        counts=formats.counts,
        env=_parse_env_specs(ctx, obj.get("env", {}), _join(where, "env")),
        rules=_parse_rules(ctx, obj.get("rules", []), _join(where, "rules")),
        tool_check=tool_check,
        output_names=_string_map(ctx, obj.get("output-names", {}), _join(where, "output-names")),
        output_templates=_string_map(
            ctx, obj.get("output-templates", {}), _join(where, "output-templates")
        ),
        output_if_any={
            key: ctx.id_list(if_any, key, _join(where, "output-if-any")) for key in if_any
        },
        template_only=ctx.id_list(obj, "template-only", where),
        companions=_parse_companions(ctx, obj.get("companions", {}), _join(where, "companions")),
    )


def _parse_companions(
    ctx: _Context, value: object, where: str
) -> dict[str, tuple[CompanionSpec, ...]]:
    """`{"in_file": [".bval", ".bvec", {"suffix": ".json", "required": false}]}` (issue 13)."""
    found = {}
    for input_id, suffixes in _object(ctx, value, where).items():
        at = f"{where}.{input_id}"
        if not isinstance(suffixes, list) or not suffixes:
            ctx.fail(at, 'must be a non-empty list of suffixes such as ".bval"')
        specs = []
        for index, item in enumerate(suffixes):
            item_at = f"{at}[{index}]"
            spec = item if isinstance(item, dict) else {"suffix": item}
            spec = ctx.mapping(spec, item_at, frozenset({"suffix", "required"}))
            suffix = spec.get("suffix")
            if not isinstance(suffix, str) or not COMPANION_SUFFIX.fullmatch(suffix):
                ctx.fail(
                    item_at, f'{suffix!r} is not a suffix such as ".bval" (a dot, then a name)'
                )
            required = spec.get("required", True)
            if not isinstance(required, bool):
                ctx.fail(f"{item_at}.required", "must be true or false")
            specs.append(CompanionSpec(suffix, required))
        found[input_id] = tuple(specs)
    return found


def _parse_defaults(ctx: _Context, value: object, where: str) -> dict[str, tuple[str, ...]]:
    """A template, or a list of templates tried in turn (`["{in_file|stem}{suffix}", ...]`)."""
    defaults = {}
    for input_id, item in _object(ctx, value, where).items():
        templates = [item] if isinstance(item, str) else item
        if not (
            isinstance(templates, list) and templates and all(isinstance(t, str) for t in templates)
        ):
            ctx.fail(_join(where, input_id), "must be a template or a non-empty list of them")
        defaults[input_id] = tuple(cast(list[str], templates))
    return defaults


@datatype
class Formats:
    printf: dict[str, str] = record_field(default_factory=dict)
    divisors: dict[str, float] = record_field(default_factory=dict)
    maps: dict[str, str] = record_field(default_factory=dict)
    counts: dict[str, str] = record_field(default_factory=dict)


def _parse_formats(ctx: _Context, value: object, where: str) -> Formats:
    """How a value is written on the command line: a printf format (`%.2f`, `-%s_final`), or an
    object with `printf`, `divide-by` (a Number the tool wants in other units: nipype's Smooth
    passes a FWHM as a sigma), `map` (a String written through a table of `maps`: nipype's
    Threshold writes direction 'above' as `u`) and `count` (a list's length written before its
    items: nipype's FAST writes `-S 2 t1 t2`). Formats are tried on a value when the whole
    definition is read (`_check_formats`), not at the first run."""
    formats = Formats()
    for input_id, item in _object(ctx, value, where).items():
        at = _join(where, input_id)
        if isinstance(item, str):
            formats.printf[input_id] = item
            continue
        if not isinstance(item, dict):
            ctx.fail(at, "must be a printf format or an object with printf, divide-by, map")
        obj = ctx.mapping(item, at, frozenset({"printf", "divide-by", "map", "count"}))
        if "count" in obj:
            formats.counts[input_id] = ctx.text(obj, "count", _join(at, "count"))
        if "printf" in obj:
            formats.printf[input_id] = ctx.text(obj, "printf", _join(at, "printf"))
        if "map" in obj:
            formats.maps[input_id] = ctx.text(obj, "map", _join(at, "map"))
        divisor = ctx.number(obj, "divide-by", at)
        if divisor is not None:
            if divisor <= 0:
                ctx.fail(_join(at, "divide-by"), "must be a number above 0")
            formats.divisors[input_id] = float(divisor)
    return formats


def _check_formats(ctx: _Context, interface: Interface) -> None:
    """Each format fits its input: printf takes the input's type, a map has every choice."""
    ext = interface.extension
    by_id = {spec.id: spec for spec in interface.inputs}
    for input_id, text in ext.formats.items():
        at = f"custom.imcache.formats.{input_id}"
        spec = by_id[input_id]
        samples: tuple[object, ...] = ("text",) if spec.type == "String" else (1.5, 1)
        if spec.type not in ("String", "Number"):
            ctx.fail(at, f"formats apply to Number and String inputs, not {spec.type}")
        try:
            for sample in samples:
                text % sample
        except (TypeError, ValueError, KeyError) as exc:
            ctx.fail(at, f"{text!r} is not a format of one {spec.type} ({exc})")
    for input_id, name in ext.value_maps.items():
        at = f"custom.imcache.formats.{input_id}.map"
        if by_id[input_id].type != "String":
            ctx.fail(at, f"applies to String inputs only, not {by_id[input_id].type}")
        if name not in ext.maps:
            ctx.fail(at, f"{name!r} is not a table of custom.imcache.maps")
        missing = [c for c in by_id[input_id].choices or () if str(c) not in ext.maps[name]]
        if missing:
            ctx.fail(at, f"the table {name!r} has no entry for the choices {missing}")
    for input_id, text in ext.counts.items():
        at = f"custom.imcache.formats.{input_id}.count"
        if not by_id[input_id].is_list:
            ctx.fail(at, "applies to list inputs only")
        try:
            shown = [text % 2, text % 13]
        except (TypeError, ValueError, KeyError) as exc:
            ctx.fail(at, f"{text!r} is not a format of one whole number ({exc})")
        if "2" not in shown[0] or "13" not in shown[1]:  # %c, %.0s: the count would not show
            ctx.fail(at, f"{text!r} does not write the number as digits (use %d)")
    for input_id in ext.divisors:
        if by_id[input_id].type != "Number":
            ctx.fail(f"custom.imcache.formats.{input_id}.divide-by", "applies to Numbers only")


def _object(ctx: _Context, value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        ctx.fail(where, "must be a JSON object")
    return cast(dict[str, Any], value)


def _string_map(ctx: _Context, value: object, where: str) -> dict[str, str]:
    obj = _object(ctx, value, where)
    for key, item in obj.items():
        if not isinstance(item, str):
            ctx.fail(_join(where, key), "must be a string")
    return cast(dict[str, str], obj)


def _parse_env_specs(ctx: _Context, value: object, where: str) -> tuple[EnvSpec, ...]:
    specs = []
    for name, item in _object(ctx, value, where).items():
        at = _join(where, name)
        obj = ctx.mapping(item, at, frozenset({"default", "choices", "description"}))
        choices = obj.get("choices", [])
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            ctx.fail(_join(at, "choices"), "must be a list of strings")
        default = ctx.text(obj, "default", _join(at, "default"))
        if choices and default not in choices:
            ctx.fail(_join(at, "default"), f"{default!r} is not one of {choices}")
        specs.append(EnvSpec(name, default, tuple(choices), str(obj.get("description", ""))))
    return tuple(specs)


def _parse_rules(ctx: _Context, value: object, where: str) -> tuple[Rule, ...]:
    if not isinstance(value, list):
        ctx.fail(where, "must be a list")
    rules = []
    for index, item in enumerate(cast(list[object], value)):
        at = f"{where}[{index}]"
        obj = ctx.mapping(item, at, frozenset({"if-set", "require", "render"}))
        require = _object(ctx, obj.get("require", {}), _join(at, "require"))
        rules.append(
            Rule(
                if_set=ctx.text(obj, "if-set", _join(at, "if-set")),
                require={key: ctx.id_list(require, key, _join(at, "require")) for key in require},
                render=_string_map(ctx, obj.get("render", {}), _join(at, "render")),
            )
        )
    return tuple(rules)


def _apply_output_names(ctx: _Context, body: Body, ext: Extension) -> Body:
    """`output-names` lets a Boutiques-valid definition show an output under an input's name
    (nipype's fsl.Merge has both an input and an output called `merged_file`)."""
    output_ids = {out.id for out in body.outputs}
    for output_id in ext.output_names:
        if output_id not in output_ids:
            ctx.fail(f"custom.imcache.output-names.{output_id}", "is not the id of an output")
    outputs = tuple(
        replace(out, public_name=ext.output_names.get(out.id, out.id)) for out in body.outputs
    )
    labels = [out.label for out in outputs]
    if ext.output_names and len(set(labels)) != len(labels):
        ctx.fail("custom.imcache.output-names", "gives two outputs the same name")
    return replace(body, outputs=outputs)


def _check_extension_refs(ctx: _Context, interface: Interface) -> None:
    ext = interface.extension
    input_ids = {spec.id for spec in interface.inputs}
    refs: list[tuple[str, str]] = [(f"custom.imcache.defaults.{i}", i) for i in ext.defaults]
    formatted = {*ext.formats, *ext.value_maps, *ext.divisors, *ext.counts}
    refs += [(f"custom.imcache.formats.{i}", i) for i in sorted(formatted)]
    refs += [("custom.imcache.template-only", i) for i in ext.template_only]
    refs += [(f"custom.imcache.companions.{i}", i) for i in ext.companions]
    refs += [
        (f"custom.imcache.output-if-any.{o}", i)
        for o, ids in ext.output_if_any.items()
        for i in ids
    ]
    for index, rule in enumerate(ext.rules):
        at = f"custom.imcache.rules[{index}]"
        refs += [(at, rule.if_set), *((at, i) for i in (*rule.require, *rule.render))]
    for where, ref in refs:
        if ref not in input_ids:
            ctx.fail(where, f"unknown input id {ref!r}{_suggest(ref, input_ids)}")
    for input_id in ext.companions:
        if interface.body.input(input_id).type != "File":
            ctx.fail(f"custom.imcache.companions.{input_id}", "companions belong to File inputs")
    _check_formats(ctx, interface)
    for input_id, templates in ext.defaults.items():
        for template in templates:
            _check_template(ctx, interface, f"custom.imcache.defaults.{input_id}", template)
    output_ids = {out.id for out in interface.outputs}
    for key, named in (
        ("output-templates", ext.output_templates),
        ("output-if-any", ext.output_if_any),
    ):
        for output_id in named:
            if output_id not in output_ids:
                where = f"custom.imcache.{key}.{output_id}"
                ctx.fail(where, f"is not the id of an output{_suggest(output_id, output_ids)}")
    for output_id, template in ext.output_templates.items():
        where = f"custom.imcache.output-templates.{output_id}"
        _check_template(ctx, interface, where, template)
        _check_template_stays_inside(ctx, FIELD.sub("x", template), where)


def _check_template(ctx: _Context, interface: Interface, where: str, template: str) -> None:
    input_ids = {spec.id for spec in interface.inputs}
    env_names = {env.name for env in interface.extension.env}
    for field in template_fields(template, lambda problem: ctx.fail(where, problem)):
        if field.env and field.source not in env_names:
            ctx.fail(where, f"env.{field.source} is not declared in custom.imcache.env")
        if not field.env and field.source not in input_ids:
            ctx.fail(where, f"unknown input id {field.source!r}")
        if field.index is not None and (
            field.env or not interface.body.input(field.source).is_list
        ):
            ctx.fail(where, f"[{field.index}] takes an item of a list, and {field.source} is none")
        for name in field.filters:
            if name not in interface.extension.maps and name not in ("stem", "noext", "name"):
                ctx.fail(where, f"unknown filter {name!r} (stem, noext, name, or a map's name)")
