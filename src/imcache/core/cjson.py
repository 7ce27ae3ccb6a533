"""JSON read and written by `json`'s own C scanner and encoder, without importing `json`.

A hit reads a definition and a record and encodes the record again for its checksum. `json`
would do that with these very functions (`_json.make_scanner`, `_json.make_encoder`), but
importing it compiles its regular expressions and imports `re` (with `enum` and `functools`),
which cost a hit more than everything it reads. Only the plain case is done here: UTF-8 bytes or
a str, one value between JSON white space; anything else (another encoding, a BOM, no value,
extra data, a value the encoder refuses) is handed to `json` itself, which then returns or
raises exactly what it always does. Without `_json` (another Python), `json` does it all.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    PairsHook = Callable[[list[tuple[str, Any]]], Any]

try:
    import _json
except ImportError:  # pragma: no cover (CPython has it)
    _json = None  # type: ignore[assignment]

WHITESPACE = " \t\n\r"  # json.decoder.WHITESPACE
# The first bytes json.detect_encoding reads as something other than UTF-8 (a BOM, UTF-16/32).
_NOT_PLAIN_UTF8 = (b"\x00", b"\xef", b"\xfe", b"\xff")


class _Context:
    """The attributes of a json.JSONDecoder that its C scanner reads, as `json.loads` sets them."""

    def __init__(self, pairs_hook: PairsHook | None) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = pairs_hook
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = _CONSTANTS.__getitem__
        self.memo: dict[str, str] = {}


_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


def loads(data: bytes | str, pairs_hook: PairsHook | None = None) -> Any:
    """`json.loads(data, object_pairs_hook=pairs_hook)`: the same value, or the same error."""
    text = _plain_text(data)
    if text is None or _json is None:
        return _json_loads(data, pairs_hook)
    scan = _json.make_scanner(_Context(pairs_hook))  # type: ignore[arg-type]  # duck-typed
    start = len(text) - len(text.lstrip(WHITESPACE))
    try:
        value, end = scan(text, start)
    except StopIteration:  # no value: json says where, in its words
        return _json_loads(data, pairs_hook)
    if text[end:].strip(WHITESPACE):  # extra data: json says so
        return _json_loads(data, pairs_hook)
    return value


def dumps(
    value: object,
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] = (", ", ": "),
    ensure_ascii: bool = True,
) -> str:
    """`json.dumps(value, sort_keys=..., separators=..., ensure_ascii=...)` (no indent)."""
    if _json is None or isinstance(value, str):
        return _json_dumps(value, sort_keys, separators, ensure_ascii)
    item_separator, key_separator = separators
    quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    encode = _json.make_encoder(
        {}, _refuse, quote, None, key_separator, item_separator, sort_keys, False, True
    )
    try:
        chunks = encode(value, 0)
    except (TypeError, ValueError, RecursionError):  # json says what it cannot encode
        return _json_dumps(value, sort_keys, separators, ensure_ascii)
    return "".join(chunks)


def _plain_text(data: bytes | str) -> str | None:
    """`data` as json.loads would read it, if that is UTF-8 or a str without a BOM; else None
    (json.detect_encoding's other cases, and the errors json reports itself)."""
    if isinstance(data, str):
        return None if data.startswith("\ufeff") else data
    if not isinstance(data, bytes) or data[:1] in _NOT_PLAIN_UTF8 or b"\x00" in data[:4]:
        return None
    return data.decode("utf-8", "surrogatepass")  # as json does: its UnicodeDecodeError too


def _refuse(value: object) -> object:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _json_loads(data: bytes | str, pairs_hook: PairsHook | None) -> Any:
    import json

    return json.loads(data, object_pairs_hook=pairs_hook)


def _json_dumps(
    value: object, sort_keys: bool, separators: tuple[str, str], ensure_ascii: bool
) -> str:
    import json

    return json.dumps(value, sort_keys=sort_keys, separators=separators, ensure_ascii=ensure_ascii)
