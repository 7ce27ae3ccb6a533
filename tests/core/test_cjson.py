"""cjson gives what json gives: the same value or the same error, the same text."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from imcache.core import cjson

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
SPACE = st.text(alphabet=" \t\n\r", max_size=3)


def outcome(read: Any, data: bytes | str, **options: Any) -> tuple[str, str]:
    try:
        return "value", repr(read(data, **options))
    except Exception as exc:  # the same kind and words, wherever json would raise
        return type(exc).__name__, str(exc)


def pairs(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return items  # repeated keys kept: what the loader's hook sees


@settings(max_examples=300)
@given(VALUES, st.booleans(), st.booleans(), st.booleans())
def test_dumps_writes_what_json_writes(
    value: object, sort_keys: bool, compact: bool, ensure_ascii: bool
) -> None:
    separators = (",", ":") if compact else (", ", ": ")
    options = {"sort_keys": sort_keys, "separators": separators, "ensure_ascii": ensure_ascii}
    try:
        expected = json.dumps(value, **options)
    except TypeError:  # keys of mixed types sorted
        expected = None
    if expected is not None:
        assert cjson.dumps(value, **options) == expected


def test_dumps_refuses_what_json_refuses() -> None:
    for value in ({"a": object()}, {1: 2, "b": 3}):
        assert outcome(cjson.dumps, value, sort_keys=True) == outcome(
            json.dumps, value, sort_keys=True
        )
    loop: list[object] = []
    loop.append(loop)
    assert outcome(cjson.dumps, loop) == outcome(json.dumps, loop)


@settings(max_examples=300)
@given(VALUES, SPACE, SPACE, st.booleans())
def test_loads_reads_what_json_reads(
    value: object, before: str, after: str, as_bytes: bool
) -> None:
    text = before + json.dumps(value) + after
    data: bytes | str = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert outcome(cjson.loads, data) == outcome(json.loads, data)
    assert outcome(cjson.loads, data, pairs_hook=pairs) == outcome(
        json.loads, data, object_pairs_hook=pairs
    )


@settings(max_examples=500)
@given(st.binary(max_size=40) | st.text(max_size=40))
@example(b"")
@example(b"  ")
@example(b"[1] x")
@example(b"[1] [2]")
@example(b'{"a": 1, "a": 2}')
@example(b"\xef\xbb\xbf[1]")
@example("\ufeff[1]")
@example(b"\xff\xfe[\x001\x00]\x00")
@example(b"\x00\x00\x00[")
@example(b"[NaN, Infinity, -Infinity, 1e400]")
@example(b"\xc3(")
@example(b'"\\ud800"')
@example(b"1" * 5000)
@example(b"[" * 100000)
def test_loads_reads_and_refuses_any_bytes_as_json_does(data: bytes | str) -> None:
    assert outcome(cjson.loads, data) == outcome(json.loads, data)
    assert outcome(cjson.loads, data, pairs_hook=pairs) == outcome(
        json.loads, data, object_pairs_hook=pairs
    )


def test_reading_and_writing_plain_json_imports_no_json() -> None:
    probe = (
        "import sys\n"
        "from imcache.core import cjson\n"
        'text = cjson.dumps(cjson.loads(b\' {"b": [1, 2.5, null], "a": "\\\\u00e9"} \'),'
        " sort_keys=True)\n"
        "print(text, 'json' in sys.modules, 're' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == '{"a": "\\u00e9", "b": [1, 2.5, null]} False False'


def test_without_the_c_module_json_does_it_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cjson, "_json", None)
    text = b'{"b": [1, 2.5, null], "a": "\\u00e9", "b": 3}'
    assert outcome(cjson.loads, text, pairs_hook=pairs) == outcome(
        json.loads, text, object_pairs_hook=pairs
    )
    assert outcome(cjson.loads, b"[1] x") == outcome(json.loads, b"[1] x")
    value = {"b": [1, 2.5, None], "a": "\u00e9"}
    assert cjson.dumps(value, sort_keys=True) == json.dumps(value, sort_keys=True)
