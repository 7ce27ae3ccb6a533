"""The checks across a descriptor's sections, once each section has its shape: every value-key,
id and group member resolves, ids are unique, and no command line needs a shell."""

from __future__ import annotations

from imcache.core.interfaces.model import Body, Interface
from imcache.core.interfaces.shape import Context, join, suggestion
from imcache.core.interfaces.templates import key_pattern

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

# What a shell would read as more than words: redirections, lists, quotes, variables, globs.
SHELL_SYNTAX = frozenset("<>|&;`$\"'\\*?#()~\n")
# ASCII classes of the definition's names, matched with str methods (a hit does not import re).
LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
DIGITS = frozenset("0123456789")
KEY_START = LETTERS | {"_"}  # [A-Za-z_]
WORD_CHARS = KEY_START | DIGITS  # [A-Za-z0-9_]


def value_keys_in(text: str) -> list[str]:
    r"""Each value-key in `text`, as `re.findall(r"\[[A-Za-z_][A-Za-z0-9_]*\]", text)` finds them: a
    value-key looks like [NAME]; `[1]` (an AFNI sub-brick selector) is text, not a key."""
    found = []
    start = text.find("[")
    while start != -1:
        end = start + 1
        while end < len(text) and text[end] in WORD_CHARS:
            end += 1
        if end > start + 1 and text[start + 1] in KEY_START and text[end : end + 1] == "]":
            found.append(text[start : end + 1])
        start = text.find("[", start + 1)
    return found


def is_value_key(text: str) -> bool:
    r"""`re.fullmatch(r"\[[A-Za-z_][A-Za-z0-9_]*\]", text)`."""
    return (
        len(text) >= 3
        and text[0] == "["
        and text[-1] == "]"
        and text[1] in KEY_START
        and all(char in WORD_CHARS for char in text[2:-1])
    )


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


def check_body(
    ctx: Context, body: Body, where: str, template_only: frozenset[str] = frozenset()
) -> None:
    """Cross-references inside one command line: value-keys and ids must all resolve."""
    input_ids = {spec.id for spec in body.inputs}
    group_ids = {group.id for group in body.groups}
    known_keys = body.value_keys()
    file_lines = "\n".join(line for out in body.outputs for line in out.file_template or ())
    owners: dict[str, str] = {}  # value-key -> the input it belongs to
    for spec in body.inputs:
        at = join(where, f'inputs (id "{spec.id}")')
        owner = owners.get(spec.value_key, spec.id)  # one id twice is check_ids_unique's
        if owner != spec.id and not _may_share_a_value_key(body, owner, spec.id):
            ctx.fail(
                join(at, "value-key"),
                f"{spec.value_key} is also the value-key of input {owner!r}, and both may be "
                "given: the command line would take one value and drop the other; give each "
                "input a value-key of its own (or make the two mutually exclusive)",
            )
        owners.setdefault(spec.value_key, spec.id)
        on_command_line = spec.value_key in body.command_line or spec.value_key in file_lines
        if not on_command_line and spec.id not in template_only:
            ctx.fail(
                join(at, "value-key"),
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
                        join(at, field),
                        f"unknown input id {ref!r}{suggestion(ref, input_ids)}",
                    )
    for key in value_keys_in(body.command_line):
        if key not in known_keys:
            ctx.fail(join(where, "command-line"), f"{key} is not the value-key of any input")
    _check_no_shell_syntax(ctx, body.command_line, known_keys, join(where, "command-line"))
    for spec in body.inputs:
        if spec.flag is not None and is_value_key(spec.flag):
            ctx.fail(
                join(where, f'inputs (id "{spec.id}").command-line-flag'),
                f"{spec.flag} looks like a value-key, but a flag is passed as it is written: "
                f"the tool would get the word {spec.flag}",
            )
    for out in body.outputs:
        for key in value_keys_in(out.path_template):
            if key not in known_keys:
                ctx.fail(
                    join(where, f'output-files (id "{out.id}").path-template'),
                    f"{key} is not the value-key of any input",
                )
    for group in body.groups:
        for member in group.members:
            if member not in input_ids:
                ctx.fail(
                    join(where, f'groups (id "{group.id}").members'),
                    f"unknown input id {member!r}{suggestion(member, input_ids)}",
                )


def _check_no_shell_syntax(ctx: Context, template: str, keys: set[str], where: str) -> None:
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


def _all_ids(interface: Interface) -> Iterator[tuple[str, str]]:
    body = interface.body
    yield from (("inputs", spec.id) for spec in body.inputs)
    yield from (("output-files", out.id) for out in body.outputs)
    yield from (("groups", group.id) for group in body.groups)
    for stream in (interface.stdout_output, interface.stderr_output):
        if stream is not None:
            yield ("stdout-output/stderr-output", stream.id)


def check_ids_unique(ctx: Context, interface: Interface) -> None:
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
