"""Render typed values into an argv list and the output paths of a run. Never a shell string.

Boutiques describes a command line as a string with value-keys that bosh fills in and hands to a
shell, quoting each value. We reproduce the same words without a shell: the template's own text
splits into words at white space, a value never does, and text glued to a value (`-o[OUT]`,
`[A][B]`) stays one word, exactly as the shell would have split bosh's quoted string.
"""

from __future__ import annotations

import posixpath

from imcache.core.datatype import datatype, replace
from imcache.core.errors import UsageError
from imcache.core.interfaces.model import (
    Body,
    FileArg,
    InputSpec,
    Interface,
    OutputSpec,
    Scalar,
    SubArg,
    Value,
    Values,
)
from imcache.core.interfaces.templates import expand, key_pattern
from imcache.core.interfaces.values import template_lookup
from imcache.core.layout import OWN_FILES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import NoReturn

# The files imcache writes into every entry; an output named by a value may not take them.


@datatype
class Segment:
    text: str
    is_value: bool  # a value is one piece of a word; template text splits at white space


@datatype
class PlannedOutput:
    spec: OutputSpec
    path: str  # relative to the entry folder; a glob pattern for list outputs
    content: str | None = None  # a file-template's text, written before the tool runs


def plan_outputs(
    interface: Interface, values: Values, declared_env: Mapping[str, str] | None = None
) -> list[PlannedOutput]:
    """The outputs this run should produce, with their paths inside the entry folder."""
    planned = []
    extension = interface.extension
    for spec in interface.outputs:
        if_any = extension.output_if_any.get(spec.id)
        if if_any is not None and not any(_given(values.get(i)) for i in if_any):
            continue  # none of the inputs that ask for this output was given
        if spec.id in extension.output_templates:
            path = _fill_extension_template(interface, spec, values, declared_env or {})
        else:
            path = _fill_path_template(interface, spec, values)
        if path is not None:
            planned.append(PlannedOutput(spec, path))
    for stream in (interface.stdout_output, interface.stderr_output):
        if stream is not None:
            planned.append(PlannedOutput(stream, stream.path_template))
    return _with_config_files(interface, values, planned)


def _given(value: Value | None) -> bool:
    """Given, and not a Flag left off (a Number 0 is given: `0 == False` must not hide it)."""
    return value is not None and value is not False


def _with_config_files(
    interface: Interface, values: Values, planned: list[PlannedOutput]
) -> list[PlannedOutput]:
    """Outputs with a file-template get their text, which may name the other outputs' paths."""
    if all(out.spec.file_template is None for out in planned):
        return planned
    from imcache.core.interfaces.config_files import fill_file_template  # few definitions have one

    paths = {out.spec.id: out.path for out in planned}
    return [
        replace(out, content=fill_file_template(interface, out.spec, values, paths))
        if out.spec.file_template is not None
        else out
        for out in planned
    ]


def render_argv(
    interface: Interface,
    values: Values,
    outputs: list[PlannedOutput],
    overrides: Mapping[str, str] | None = None,
) -> list[str]:
    overrides = {**(overrides or {}), **_dash_safe_names(interface, outputs)}
    renderer = _Renderer(interface, overrides)
    output_paths = {
        out.spec.id: f"./{out.path}" if out.path.startswith("-") else out.path for out in outputs
    }
    segments = renderer.body(interface.body, values, output_paths)
    return split_words(segments)


def _dash_safe_names(interface: Interface, outputs: list[PlannedOutput]) -> dict[str, str]:
    """An output named `-x.nii` is passed as `./-x.nii`: the tool must not take it for an option.

    Covers the usual form, a String input whose value is the output's whole path template."""
    by_key = {spec.value_key: spec for spec in interface.inputs}
    safe = {}
    for out in outputs:
        spec = by_key.get(out.spec.path_template)
        if spec is not None and spec.type == "String" and out.path.startswith("-"):
            safe[spec.id] = f"./{out.path}"
    return safe


def split_words(segments: list[Segment]) -> list[str]:
    words: list[str] = []
    current: list[str] = []
    started = False
    for segment in segments:
        if segment.is_value:
            current.append(segment.text)
            started = True
            continue
        for piece in split_spaces(segment.text):
            if not piece:
                continue
            if piece.isspace():
                if started:
                    words.append("".join(current))
                current, started = [], False
            else:
                current.append(piece)
                started = True
    if started:
        words.append("".join(current))
    return words


def split_spaces(text: str) -> list[str]:
    r"""`re.split(r"(\s+)", text)`: text and runs of white space in turn (`\s` is str.isspace),
    with str methods (a hit does not import re)."""
    pieces: list[str] = []
    start = position = 0
    while position < len(text):
        if not text[position].isspace():
            position += 1
            continue
        end = position + 1
        while end < len(text) and text[end].isspace():
            end += 1
        pieces += [text[start:position], text[position:end]]
        start = position = end
    pieces.append(text[start:])
    return pieces


class _Renderer:
    def __init__(self, interface: Interface, overrides: Mapping[str, str]) -> None:
        self.extension = interface.extension
        self.overrides = overrides

    def body(self, body: Body, values: Values, output_paths: Mapping[str, str]) -> list[Segment]:
        keyed: dict[str, list[Segment]] = {}
        for spec in body.inputs:
            if spec.id in values and not keyed.get(spec.value_key):
                keyed[spec.value_key] = self.input(spec, values[spec.id], output_paths)
        for out in body.outputs:
            if out.value_key and out.id in output_paths:
                keyed[out.value_key] = _flagged(
                    out.flag, out.flag_separator, [Segment(output_paths[out.id], True)]
                )
        return _substitute(body.command_line, body.value_keys(), keyed)

    def input(
        self, spec: InputSpec, value: Value, output_paths: Mapping[str, str]
    ) -> list[Segment]:
        if spec.type == "Flag":
            return [Segment(spec.flag or "", False)] if value is True else []
        if spec.id in self.overrides:
            value = self.overrides[spec.id]
        items = value if isinstance(value, list) else [value]
        joined: list[Segment] = []
        for index, item in enumerate(items):
            if index:
                joined.append(Segment(spec.list_separator, False))
            if isinstance(item, SubArg):
                variant = next(v for v in spec.variants if v.id == item.variant)
                joined += self.body(variant, item.values, output_paths)
            else:
                joined.append(Segment(self.text(spec, item), True))
        flagged = _flagged(spec.flag, spec.flag_separator, joined)
        count = self.extension.counts.get(spec.id)
        if count is not None:  # the list's length first, as template text (it splits)
            return [Segment(count % len(items) + " ", False), *flagged]
        return flagged

    def text(self, spec: InputSpec, item: Scalar) -> str:
        if isinstance(item, FileArg):
            return item.path
        ext = self.extension
        if spec.id in ext.value_maps:  # the loader made sure every choice has an entry
            item = ext.maps[ext.value_maps[spec.id]].get(str(item), str(item))
        if spec.id in ext.divisors and isinstance(item, int | float):
            item = item / ext.divisors[spec.id]  # a value in the tool's other units
        if spec.id in ext.formats and isinstance(item, int | float | str):
            return ext.formats[spec.id] % item
        return str(item)


def _flagged(flag: str | None, separator: str, value: list[Segment]) -> list[Segment]:
    if flag is None:
        return value
    return [Segment(flag, False), Segment(separator, False), *value]


def _substitute(
    template: str, all_keys: set[str], keyed: Mapping[str, list[Segment]]
) -> list[Segment]:
    segments: list[Segment] = []
    position = 0
    for match in key_pattern(all_keys).finditer(template):
        segments.append(Segment(template[position : match.start()], False))
        segments += keyed.get(match.group(0), [])
        position = match.end()
    segments.append(Segment(template[position:], False))
    return segments


def _fill_path_template(interface: Interface, spec: OutputSpec, values: Values) -> str | None:
    """The output's path, or None when it names an input that was not given (not expected)."""
    by_key = {s.value_key: s for s in interface.inputs if s.value_key in spec.path_template}
    if any(s.id not in values for s in by_key.values()):
        return None
    path = key_pattern(by_key).sub(
        lambda m: _path_text(
            by_key[m.group(0)], values[by_key[m.group(0)].id], spec.stripped_extensions
        ),
        spec.path_template,
    )
    return _inside_entry(interface, spec, path, path != spec.path_template)


def _fill_extension_template(
    interface: Interface, spec: OutputSpec, values: Values, declared_env: Mapping[str, str]
) -> str | None:
    """A `custom.imcache.output-templates` path (`{out_file|stem}_mask{env.X|ext}`), or None
    when one of its fields has no value (the output is not expected)."""

    def fail(problem: str) -> NoReturn:
        raise UsageError(f"{interface.name}: output {spec.label}: {problem}", "check its inputs")

    template = interface.extension.output_templates[spec.id]
    lookup = template_lookup(values, declared_env)
    path = expand(template, lookup, interface.extension.maps, fail)
    return None if path is None else _inside_entry(interface, spec, path, True)


def _inside_entry(interface: Interface, spec: OutputSpec, path: str, from_values: bool) -> str:
    """The path, once sure that it names a file of its own inside the entry folder."""
    normal = posixpath.normpath(path)
    if normal in OWN_FILES and from_values:
        raise UsageError(
            f"{interface.name}: output {spec.label} would be named {normal!r}, "
            "a name imcache keeps for its own files in every entry",
            "choose another output name",
        )
    if not path.strip():
        raise UsageError(
            f"{interface.name}: output {spec.label} would be named {path!r}, which names no file",
            "give the output a file name",
        )
    if normal == "." or path.endswith("/"):
        raise UsageError(
            f"{interface.name}: output {spec.label} would be written at {path!r}, which names "
            "a folder (the entry's own, or one in it), not a file",
            "give the output a file name",
        )
    if path.startswith("/") or normal == ".." or normal.startswith("../"):
        raise UsageError(
            f"{interface.name}: output {spec.label} would be written at {path!r}, "
            "outside the entry folder",
            "give output names without '/' at the start and without '..'",
        )
    return path


def _path_text(spec: InputSpec, value: Value, stripped: tuple[str, ...]) -> str:
    items = value if isinstance(value, list) else [value]
    texts = []
    for item in items:
        text = posixpath.basename(item.path) if isinstance(item, FileArg) else str(item)
        if isinstance(item, bool):
            text = ""
        for extension in stripped:
            if extension and text.endswith(extension):
                text = text[: -len(extension)]
        texts.append(text)
    return spec.list_separator.join(texts)
