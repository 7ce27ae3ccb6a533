"""The imcache extension, `custom.imcache`: what a definition says where Boutiques cannot (derived
defaults, formats, environment choices, rules, output names and templates), read and checked
against the inputs and outputs of the descriptor it extends."""

from __future__ import annotations

from imcache.core.datatype import datatype, replace
from imcache.core.datatype import field as record_field
from imcache.core.interfaces.load_outputs import check_template_stays_inside
from imcache.core.interfaces.model import (
    Body,
    CompanionSpec,
    EnvSpec,
    Extension,
    Interface,
    Rule,
)
from imcache.core.interfaces.shape import Context, join, suggestion
from imcache.core.interfaces.templates import FIELD, template_fields
from imcache.core.lazyre import lazy_pattern

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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
COMPANION_SUFFIX = lazy_pattern(r"\.[^/\0]+")  # `.bval`, `_sbref.json`-like names start with a dot


def parse_extension(ctx: Context, descriptor: dict[str, Any]) -> Extension:
    """`custom.imcache` of the descriptor; other tools' keys in `custom` are theirs."""
    custom = ctx.json_object(descriptor.get("custom", {}), "custom")
    if "imcache" not in custom:
        return Extension()
    where = "custom.imcache"
    obj = ctx.mapping(custom["imcache"], where, EXTENSION_KEYS)
    tool_check = obj.get("tool-check", "mtime")
    if tool_check not in ("mtime", "content"):
        ctx.fail(join(where, "tool-check"), "must be 'mtime' or 'content'")
    formats = _parse_formats(ctx, obj.get("formats", {}), join(where, "formats"))
    if_any = ctx.json_object(obj.get("output-if-any", {}), join(where, "output-if-any"))
    return Extension(
        defaults=_parse_defaults(ctx, obj.get("defaults", {}), join(where, "defaults")),
        maps={
            name: ctx.string_map(table, f"{where}.maps.{name}")
            for name, table in ctx.json_object(obj.get("maps", {}), join(where, "maps")).items()
        },
        formats=formats.printf,
        divisors=formats.divisors,
        value_maps=formats.maps,
        counts=formats.counts,
        env=_parse_env_specs(ctx, obj.get("env", {}), join(where, "env")),
        rules=_parse_rules(ctx, obj.get("rules", []), join(where, "rules")),
        tool_check=tool_check,
        output_names=ctx.string_map(obj.get("output-names", {}), join(where, "output-names")),
        output_templates=ctx.string_map(
            obj.get("output-templates", {}), join(where, "output-templates")
        ),
        output_if_any={
            key: ctx.id_list(if_any, key, join(where, "output-if-any")) for key in if_any
        },
        template_only=ctx.id_list(obj, "template-only", where),
        companions=_parse_companions(ctx, obj.get("companions", {}), join(where, "companions")),
    )


def _parse_companions(
    ctx: Context, value: object, where: str
) -> dict[str, tuple[CompanionSpec, ...]]:
    """`{"in_file": [".bval", ".bvec", {"suffix": ".json", "required": false}]}` (issue 13)."""
    found = {}
    for input_id, suffixes in ctx.json_object(value, where).items():
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


def _parse_defaults(ctx: Context, value: object, where: str) -> dict[str, tuple[str, ...]]:
    """A template, or a list of templates tried in turn (`["{in_file|stem}{suffix}", ...]`)."""
    defaults = {}
    for input_id, item in ctx.json_object(value, where).items():
        templates = [item] if isinstance(item, str) else item
        if not (
            isinstance(templates, list) and templates and all(isinstance(t, str) for t in templates)
        ):
            ctx.fail(join(where, input_id), "must be a template or a non-empty list of them")
        defaults[input_id] = tuple(templates)
    return defaults


@datatype
class Formats:
    printf: dict[str, str] = record_field(default_factory=dict)
    divisors: dict[str, float] = record_field(default_factory=dict)
    maps: dict[str, str] = record_field(default_factory=dict)
    counts: dict[str, str] = record_field(default_factory=dict)


def _parse_formats(ctx: Context, value: object, where: str) -> Formats:
    """How a value is written on the command line: a printf format (`%.2f`, `-%s_final`), or an
    object with `printf`, `divide-by` (a Number the tool wants in other units: nipype's Smooth
    passes a FWHM as a sigma), `map` (a String written through a table of `maps`: nipype's
    Threshold writes direction 'above' as `u`) and `count` (a list's length written before its
    items: nipype's FAST writes `-S 2 t1 t2`). Formats are tried on a value when the whole
    definition is read (`_check_formats`), not at the first run."""
    formats = Formats()
    for input_id, item in ctx.json_object(value, where).items():
        at = join(where, input_id)
        if isinstance(item, str):
            formats.printf[input_id] = item
            continue
        if not isinstance(item, dict):
            ctx.fail(at, "must be a printf format or an object with printf, divide-by, map")
        obj = ctx.mapping(item, at, frozenset({"printf", "divide-by", "map", "count"}))
        if "count" in obj:
            formats.counts[input_id] = ctx.text(obj, "count", join(at, "count"))
        if "printf" in obj:
            formats.printf[input_id] = ctx.text(obj, "printf", join(at, "printf"))
        if "map" in obj:
            formats.maps[input_id] = ctx.text(obj, "map", join(at, "map"))
        divisor = ctx.number(obj, "divide-by", at)
        if divisor is not None:
            if divisor <= 0:
                ctx.fail(join(at, "divide-by"), "must be a number above 0")
            formats.divisors[input_id] = float(divisor)
    return formats


def _check_formats(ctx: Context, interface: Interface) -> None:
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


def _parse_env_specs(ctx: Context, value: object, where: str) -> tuple[EnvSpec, ...]:
    specs = []
    for name, item in ctx.json_object(value, where).items():
        at = join(where, name)
        obj = ctx.mapping(item, at, frozenset({"default", "choices", "description"}))
        choices = obj.get("choices", [])
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            ctx.fail(join(at, "choices"), "must be a list of strings")
        default = ctx.text(obj, "default", join(at, "default"))
        if choices and default not in choices:
            ctx.fail(join(at, "default"), f"{default!r} is not one of {choices}")
        description = ctx.text(obj, "description", join(at, "description"), default="")
        specs.append(EnvSpec(name, default, tuple(choices), description))
    return tuple(specs)


def _parse_rules(ctx: Context, value: object, where: str) -> tuple[Rule, ...]:
    rules = []
    for at, item in ctx.elements(value, where):
        obj = ctx.mapping(item, at, frozenset({"if-set", "require", "render"}))
        require = ctx.json_object(obj.get("require", {}), join(at, "require"))
        rules.append(
            Rule(
                if_set=ctx.text(obj, "if-set", join(at, "if-set")),
                require={key: ctx.id_list(require, key, join(at, "require")) for key in require},
                render=ctx.string_map(obj.get("render", {}), join(at, "render")),
            )
        )
    return tuple(rules)


def apply_output_names(ctx: Context, body: Body, ext: Extension) -> Body:
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


def check_extension(ctx: Context, interface: Interface) -> None:
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
            ctx.fail(where, f"unknown input id {ref!r}{suggestion(ref, input_ids)}")
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
                ctx.fail(where, f"is not the id of an output{suggestion(output_id, output_ids)}")
    for output_id, template in ext.output_templates.items():
        where = f"custom.imcache.output-templates.{output_id}"
        _check_template(ctx, interface, where, template)
        check_template_stays_inside(ctx, FIELD.sub("x", template), where)


def _check_template(ctx: Context, interface: Interface, where: str, template: str) -> None:
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
