"""The small template language of `custom.imcache.defaults`: `{in_files[0]|stem}_merged{env.X|ext}`.

A field names an input (optionally one element of a list input) or a declared environment
variable, then filters: `stem` (file name without its extensions), `noext` (the same with its
folder), `name` (file name), or the name of a table in `custom.imcache.maps`. It is data, never
code: nothing is evaluated.
"""

from __future__ import annotations

import os

from imcache.core.datatype import datatype
from imcache.core.lazyre import lazy_pattern

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import NoReturn

FIELD = lazy_pattern(r"\{([^{}]*)\}")  # custom.imcache templates only: compiled when used
SOURCE = lazy_pattern(r"(env\.)?([A-Za-z_][A-Za-z0-9_]*)(?:\[(-?\d{1,6})\])?")
# Two-part extensions that neuroimaging tools treat as one (as nipype's split_filename does).
DOUBLE_EXTENSIONS = (".nii.gz", ".tar.gz", ".niml.dset", ".img.gz", ".hdr.gz", ".mgh.gz", ".mif.gz")


@datatype
class Field:
    env: bool
    source: str
    index: int | None
    filters: tuple[str, ...]


def template_fields(template: str, fail: Callable[[str], NoReturn]) -> Iterator[Field]:
    for match in FIELD.finditer(template):
        source, *filters = [part.strip() for part in match.group(1).split("|")]
        parsed = SOURCE.fullmatch(source)
        if parsed is None:
            fail(f"cannot read the field {match.group(0)!r}")
        index = int(parsed.group(3)) if parsed.group(3) is not None else None
        yield Field(bool(parsed.group(1)), parsed.group(2), index, tuple(filters))
    if "{" in FIELD.sub("", template) or "}" in FIELD.sub("", template):
        fail(f"unbalanced braces in {template!r}")


def key_pattern(keys: Iterable[str]) -> KeyPattern:
    """Value-keys to find in one pass, longest first, so that a key that contains another
    ([IN] in [IN_FILE]) is matched whole and a value that itself holds `[KEY]` stays as it is."""
    return KeyPattern(sorted(keys, key=len, reverse=True))


class KeyMatch:
    """One value-key found in a text: what `re.Match` gives of it (`group(0)`, start, end)."""

    __slots__ = ("_end", "_key", "_start")

    def __init__(self, key: str, start: int) -> None:
        self._key, self._start, self._end = key, start, start + len(key)

    def group(self, index: int = 0) -> str:
        if index != 0:
            raise IndexError("no such group")
        return self._key

    def start(self) -> int:
        return self._start

    def end(self) -> int:
        return self._end


class KeyPattern:
    """`re.compile("|".join(map(re.escape, ordered)))` for value-keys, matched with str methods
    (a hit does not import `re`): at each place the first key in `ordered` that is there, left
    to right, without overlaps. An empty key, which matches everywhere, is left to `re`."""

    def __init__(self, ordered: list[str]) -> None:
        self.ordered = ordered
        self.starts = frozenset(key[0] for key in ordered if key)

    def finditer(self, text: str) -> Iterator[KeyMatch]:
        if "" in self.ordered:
            yield from self._by_re(text)  # type: ignore[misc]  # re.Match: the same three methods
            return
        position, size = 0, len(text)
        while position < size:
            if text[position] in self.starts:
                key = next((k for k in self.ordered if text.startswith(k, position)), None)
                if key is not None:
                    yield KeyMatch(key, position)
                    position += len(key)
                    continue
            position += 1

    def findall(self, text: str) -> list[str]:
        return [match.group(0) for match in self.finditer(text)]

    def sub(self, replace: str | Callable[[KeyMatch], str], text: str) -> str:
        """`re.sub` with a replacement taken as it is (no group references) or made by a call."""
        pieces: list[str] = []
        position = 0
        for match in self.finditer(text):
            pieces += [text[position : match.start()], _replacement(replace, match)]
            position = match.end()
        pieces.append(text[position:])
        return "".join(pieces)

    def _by_re(self, text: str) -> Iterator[object]:
        import re

        return re.compile("|".join(re.escape(key) for key in self.ordered)).finditer(text)


def _replacement(replace: str | Callable[[KeyMatch], str], match: KeyMatch) -> str:
    return replace if isinstance(replace, str) else replace(match)


def stem(file_name: str) -> str:
    """`/x/sub-01_T1w.nii.gz` -> `sub-01_T1w`."""
    base = os.path.basename(file_name)
    for extension in DOUBLE_EXTENSIONS:
        if base.endswith(extension) and len(base) > len(extension):
            return base[: -len(extension)]
    return os.path.splitext(base)[0]


def without_extensions(path: str) -> str:
    """`sub/brain.nii.gz` -> `sub/brain`: the folder kept (an output named beside another one)."""
    folder = os.path.dirname(path)
    return os.path.join(folder, stem(path)) if folder else stem(path)


def expand(
    template: str,
    lookup: Callable[[Field], str | None],
    maps: Mapping[str, Mapping[str, str]],
    fail: Callable[[str], NoReturn],
) -> str | None:
    """Fill the template; None when a field's source has no value (the default does not apply)."""
    pieces: list[str] = []
    position = 0
    for match, field in zip(FIELD.finditer(template), template_fields(template, fail), strict=True):
        value = lookup(field)
        if value is None:
            return None
        for name in field.filters:
            if name == "stem":
                value = stem(value)
            elif name == "name":
                value = os.path.basename(value)
            elif name == "noext":
                value = without_extensions(value)
            elif value in maps[name]:
                value = maps[name][value]
            else:
                fail(f"{value!r} has no entry in the map {name!r}")
        pieces += [template[position : match.start()], value]
        position = match.end()
    pieces.append(template[position:])
    return "".join(pieces)
