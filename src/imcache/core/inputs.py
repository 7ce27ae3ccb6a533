"""An entry's inputs as its key fields show them, for listings: from the line its mark (and so
its index line) holds, else from its record (an entry made before the mark held them)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import chain
from typing import Any

from imcache.core.entry import record_inputs
from imcache.core.scan import Entry, read_record

# A JSON string as json.dumps writes it (ASCII; no control character raw), an object of them with
# its separators, and such objects a line each. Possessive: each run of plain characters is taken
# in one step (an alternation per character took 2 s over 100,000 lines).
_STRING = rb'"(?:[^"\\\x00-\x1f\x80-\xff]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+"'
_OBJECT = rb"\{(?:%s: %s(?:, %s: %s)*+)?\}" % (_STRING, _STRING, _STRING, _STRING)
DUMPED_LINES = re.compile(rb"(?:%s\n)*+%s" % (_OBJECT, _OBJECT))


def inputs_of(entry: Entry) -> dict[str, str]:
    """The entry's inputs as its key fields show them: from its mark, else from its record
    (an entry made before the mark held them, or a mark that is not ours)."""
    if entry.summary is not None:
        try:
            inputs = json.loads(entry.summary)
        except ValueError:
            inputs = None
        if _is_inputs(inputs):
            return inputs  # type: ignore[no-any-return]
    return record_inputs(read_record(entry))


def inputs_of_all(entries: list[Entry]) -> list[dict[str, str]]:
    """`inputs_of` of each entry: their marks' lines parsed as one JSON array (one call into
    the decoder instead of 100,000), or one by one if any is not what a mark of ours holds."""
    parsed = _parsed_summaries(entries)
    return [inputs_of(entry) for entry in entries] if parsed is None else parsed


def inputs_json_all(entries: list[Entry]) -> list[str]:
    """Each entry's inputs as JSON text: its mark's line as it is, once all of them parse as
    inputs (a mark's line is `json.dumps` of them: no need to decode and encode them again).

    Lines as `json.dumps` writes an object of strings (ASCII, its separators) are known to be
    such by one match over all of them, which makes nothing (decoding them made 100,000
    dicts); any other line has them all decoded, as before."""
    made = inputs_json_parts(entries)
    return made if isinstance(made, list) else made(entries)


def inputs_json_parts(entries: list[Entry]) -> list[str] | Callable[[list[Entry]], list[str]]:
    """`inputs_json_all(entries)`, or, where all the marks' lines are as `json.dumps` writes
    them (one match over all: the case that decides the form for every entry), the function
    that gives a part's texts: a listing made in parts by two processes decodes its own."""
    return _as_dumped if _all_dumped(entries) else _decoded_all(entries)


def _decoded_all(entries: list[Entry]) -> list[str]:
    """`inputs_json_all` where some line is not as `json.dumps` writes it."""
    parsed = _parsed_summaries(entries)
    if parsed is None:
        return [json.dumps(inputs_of(entry)) for entry in entries]
    if not b"".join(entry.summary or b"" for entry in entries).isascii():  # not json.dumps's
        return [json.dumps(inputs) for inputs in parsed]
    return [entry.summary.decode("ascii", "replace") for entry in entries]  # type: ignore[union-attr]


def _all_dumped(entries: list[Entry]) -> bool:
    summaries = [entry.summary for entry in entries]
    return None not in summaries and DUMPED_LINES.fullmatch(b"\n".join(summaries)) is not None  # type: ignore[arg-type]


def _as_dumped(entries: list[Entry]) -> list[str]:
    return [entry.summary.decode("ascii") for entry in entries]  # type: ignore[union-attr]


def _parsed_summaries(entries: list[Entry]) -> list[dict[str, str]] | None:
    summaries = [entry.summary for entry in entries]
    if not all(summary is not None and summary[:1] == b"{" for summary in summaries):
        return None
    try:
        # Joined by a newline, which no JSON string holds raw: a damaged mark that ends inside
        # a string cannot be closed by the next one (the two read as one entry's inputs).
        parsed = json.loads(b"[" + b",\n".join(summaries) + b"]")  # type: ignore[arg-type]
    except ValueError:
        return None
    if not isinstance(parsed, list) or len(parsed) != len(entries):
        return None
    try:  # every one an object of strings (_is_inputs), without a Python call per entry
        kinds = set(map(type, chain.from_iterable(map(dict.values, parsed))))
    except TypeError:  # not all of them objects
        return None
    return parsed if kinds <= {str} else None


def _is_inputs(inputs: Any) -> bool:
    return isinstance(inputs, dict) and all(isinstance(v, str) for v in inputs.values())


def named_digests(entries: list[Entry]) -> set[str]:
    """The digests the entries' inputs name (`file 'x' xxh3:D`, companions alike): from their
    marks, else from their records (an entry made before the mark held them)."""
    shown = [entry.summary or _record_fields(entry) for entry in entries]
    return {match.decode() for match in re.findall(rb"xxh3:([0-9a-f]{32})", b"\n".join(shown))}


def _record_fields(entry: Entry) -> bytes:
    return json.dumps(read_record(entry).get("key_fields", [])).encode()
