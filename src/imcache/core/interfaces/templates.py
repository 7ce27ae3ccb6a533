"""The small template language of `custom.imcache.defaults`: `{in_files[0]|stem}_merged{env.X|ext}`.

A field names an input (optionally one element of a list input) or a declared environment
variable, then filters: `stem` (file name without its extensions), `noext` (the same with its
folder), `name` (file name), or the name of a table in `custom.imcache.maps`. It is data, never
code: nothing is evaluated.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NoReturn

from imcache.core.datatype import datatype

FIELD = re.compile(r"\{([^{}]*)\}")
SOURCE = re.compile(r"(env\.)?([A-Za-z_][A-Za-z0-9_]*)(?:\[(-?\d{1,6})\])?")
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


def key_pattern(keys: Iterable[str]) -> re.Pattern[str]:
    """Value-keys to find in one pass, longest first, so that a key that contains another
    ([IN] in [IN_FILE]) is matched whole and a value that itself holds `[KEY]` stays as it is."""
    ordered = sorted(keys, key=len, reverse=True)
    return re.compile("|".join(re.escape(key) for key in ordered) if ordered else r"(?!)")


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
