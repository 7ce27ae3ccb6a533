"""A descriptor's `output-files`: each output's shape, and the rule that it stays in its entry."""

from __future__ import annotations

import posixpath

from imcache.core.interfaces.model import OutputSpec
from imcache.core.interfaces.shape import Context, join
from imcache.core.layout import LOGS, RESERVED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


def parse_output(ctx: Context, item: object, where: str) -> OutputSpec:
    obj = ctx.mapping(item, where, OUTPUT_KEYS)
    output_id = ctx.text(obj, "id", join(where, "id"))
    where = f'{where} (id "{output_id}")'
    file_template = obj.get("file-template")
    if "file-template" in obj and (
        not isinstance(file_template, list) or not all(isinstance(x, str) for x in file_template)
    ):
        ctx.fail(join(where, "file-template"), "must be a list of lines (strings)")
    if file_template is not None and obj.get("path-template") in LOGS:
        ctx.fail(
            join(where, "path-template"),
            f"{obj['path-template']!r} holds the tool's own output; a file-template needs "
            "another name",
        )
    if "path-template" not in obj:
        # conditional-path-template evaluates Python expressions; imcache never evaluates code
        # from a definition, so such an output is refused, not half supported.
        ctx.fail(
            join(where, "path-template"),
            "is required (conditional-path-template is not supported)",
        )
    template = ctx.text(obj, "path-template", join(where, "path-template"))
    check_template_stays_inside(ctx, template, join(where, "path-template"))
    stripped = obj.get("path-template-stripped-extensions", [])
    if not isinstance(stripped, list) or not all(isinstance(s, str) for s in stripped):
        ctx.fail(join(where, "path-template-stripped-extensions"), "must be a list of strings")
    return OutputSpec(
        id=output_id,
        name=ctx.text(obj, "name", join(where, "name"), default=output_id),
        path_template=template,
        description=ctx.text(obj, "description", join(where, "description"), default=""),
        optional=ctx.boolean(obj, "optional", where),
        is_list=ctx.boolean(obj, "list", where),
        stripped_extensions=tuple(stripped),
        value_key=ctx.optional_text(obj, "value-key", where),
        flag=ctx.optional_text(obj, "command-line-flag", where),
        flag_separator=flag_separator(ctx, obj, where),
        file_template=None if file_template is None else tuple(file_template),
    )


def flag_separator(ctx: Context, obj: dict[str, Any], where: str) -> str:
    """What joins an input's or an output's flag to its value: a space unless said otherwise."""
    separator = ctx.optional_text(obj, "command-line-flag-separator", where)
    return " " if separator is None else separator


def check_template_stays_inside(ctx: Context, template: str, where: str) -> None:
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
