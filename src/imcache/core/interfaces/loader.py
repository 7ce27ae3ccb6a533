"""Read a Boutiques descriptor (schema 0.5, and NiWrap's 0.5+styx) into an `Interface`.

Every problem raises `DefinitionError` naming the file and the field, so that the author of a
definition can fix it without reading imcache's code. This module reads the file and its top
level; `load_body` reads the inputs (with their sub-commands) and groups, `load_outputs` the
outputs, `crosscheck` checks them against each other, `extension` reads and checks the
`custom.imcache` extension, and `shape` holds the checks of one value's JSON type they all share.
"""

from __future__ import annotations

import xxhash

from imcache.core import cjson
from imcache.core.errors import DefinitionError
from imcache.core.interfaces.crosscheck import check_ids_unique
from imcache.core.interfaces.extension import apply_output_names, check_extension, parse_extension
from imcache.core.interfaces.load_body import parse_body
from imcache.core.interfaces.model import Interface, OutputSpec
from imcache.core.interfaces.shape import Context, join
from imcache.core.layout import STDERR_LOG, STDOUT_LOG

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


def load_interface(path: str, name: str) -> Interface:
    """Load the descriptor at `path` as the interface `name` (PACKAGE.Name)."""
    data = _read_json(path)
    try:
        return parse_descriptor(data, path, name)
    except RecursionError:  # what json could read, deeper than the code that walks it can go
        raise DefinitionError(path, "", "nested too deeply to be a definition") from None


def _read_json(path: str) -> object:
    from imcache.core.interfaces.definition_file import read_definition  # issue 13: bounded

    raw = read_definition(path)
    repeated: list[_Repeated] = []
    try:
        data = cjson.loads(raw, lambda pairs: _object(pairs, repeated))
    except ValueError as exc:  # json's errors, a UnicodeDecodeError, too many digits
        raise _unreadable(path, exc) from exc
    except RecursionError:
        raise DefinitionError(path, "", "nested too deeply to be a definition") from None
    if repeated:
        where = join(_path_to(data, repeated[0]), repeated[0].key)
        Context(path).fail(where, "is given twice (JSON would silently keep the last one)")
    if (b"\\ud" in raw or b"\\uD" in raw) and not _all_text(data):
        raise DefinitionError(path, "", "holds a lone surrogate escape (\\ud800-\\udfff): not text")
    return data


def _all_text(value: object) -> bool:
    """No string in `value` holds a lone surrogate (a JSON escape that names no character: no
    file name, argument or line of output can hold it)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_all_text(k) and _all_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_text(item) for item in value)
    return True


def _unreadable(path: str, exc: ValueError) -> DefinitionError:
    """What json (or the UTF-8 decoding before it) refused in the definition, in our words."""
    if isinstance(exc, UnicodeDecodeError):
        return DefinitionError(path, "", "not UTF-8 text")
    from json import JSONDecodeError  # json raised it: loaded already

    if isinstance(exc, JSONDecodeError):
        return DefinitionError(
            path, "", f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        )
    # an integer of more digits than Python reads (4300)
    return DefinitionError(path, "", "holds a number of too many digits to read")


class _Repeated(dict[str, object]):
    """A JSON object in which `key` appears more than once."""

    key = ""


def _object(pairs: list[tuple[str, Any]], repeated: list[_Repeated]) -> dict[str, Any]:
    """A JSON object as a dict, as `json` makes it, but a repeated key is noted, not dropped."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _Repeated(obj)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.key = key
            break
        seen.add(key)
    repeated.append(marked)
    return marked


def _path_to(data: object, target: object) -> str:
    """Where `target` (an object in `data`) is, as the loader names fields: `inputs[0].type`."""
    pending: list[tuple[object, str]] = [(data, "")]
    while pending:  # a loop, not recursion, as in _refuse_nul
        item, where = pending.pop()
        if item is target:
            return where
        if isinstance(item, dict):
            pending += [(value, join(where, key)) for key, value in item.items()]
        elif isinstance(item, list):
            pending += [(value, f"{where}[{index}]") for index, value in enumerate(item)]
    return ""


def _refuse_nul(ctx: Context, data: object) -> None:
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
                pending.append((value, join(where, str(key))))
        elif isinstance(item, list):
            pending += [(value, f"{where}[{index}]") for index, value in enumerate(item)]


def canonical_digest(data: object) -> str:
    """The xxh3-128 of the descriptor's canonical JSON: key order and white space do not count."""
    text = cjson.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest: str = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))
    return digest


def parse_descriptor(data: object, source: str, name: str) -> Interface:
    ctx = Context(source)
    _refuse_nul(ctx, data)
    obj = ctx.mapping(data, "", TOP_KEYS)
    command_line = ctx.text(obj, "command-line", "command-line")
    if not command_line.split():
        ctx.fail("command-line", "is empty")
    extension = parse_extension(ctx, obj)
    body = apply_output_names(ctx, parse_body(ctx, obj, "", command_line, extension), extension)
    interface = Interface(
        name=name,
        source=source,
        digest=canonical_digest(data),
        tool_name=ctx.text(obj, "name", "name"),
        description=ctx.text(obj, "description", "description", default=""),
        body=body,
        fixed_env=_parse_fixed_env(ctx, obj.get("environment-variables", [])),
        stdout_output=_parse_stream_output(ctx, obj, "stdout-output", STDOUT_LOG),
        stderr_output=_parse_stream_output(ctx, obj, "stderr-output", STDERR_LOG),
        extension=extension,
        version=ctx.text(obj, "tool-version", "tool-version", default=""),
    )
    check_ids_unique(ctx, interface)
    check_extension(ctx, interface)
    return interface


def _parse_fixed_env(ctx: Context, value: object) -> dict[str, str]:
    env = {}
    problem = "must be a list of {name, value} objects"
    for at, item in ctx.elements(value, "environment-variables", problem):
        obj = ctx.mapping(item, at, frozenset({"name", "value", "description"}))
        name = ctx.text(obj, "name", join(at, "name"))
        import re  # a definition that sets variables only

        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            ctx.fail(join(at, "name"), f"{name!r} is not a valid variable name")
        env[name] = ctx.text(obj, "value", join(at, "value"))
    return env


def _parse_stream_output(
    ctx: Context, obj: dict[str, Any], key: str, file_name: str
) -> OutputSpec | None:
    if key not in obj:
        return None
    stream = ctx.mapping(obj[key], key, frozenset({"id", "name", "description"}))
    output_id = ctx.text(stream, "id", join(key, "id"))
    return OutputSpec(
        id=output_id,
        name=ctx.text(stream, "name", join(key, "name"), default=output_id),
        path_template=file_name,
        description=ctx.text(stream, "description", join(key, "description"), default=""),
    )
