"""Catalogues and name resolution: `PACKAGE.Name` -> the first definition along the search path.

The search path is every `--interfaces DIR`, then every folder of `IMCACHE_PATH` (colon
separated), then the built-in catalogue. Two folder layouts are read:

- imcache's own: `DIR/PACKAGE/Name.json`;
- NiWrap's: `DIR/PACKAGE/VERSION/Name/boutiques.json` (the highest version wins).
"""

from __future__ import annotations

import os
import time

from imcache.core.datatype import datatype
from imcache.core.errors import UnknownInterfaceError, UsageError
from imcache.core.interfaces.crosscheck import DIGITS, LETTERS, WORD_CHARS
from imcache.core.interfaces.loader import load_interface
from imcache.core.interfaces.model import Interface

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

BUILTIN = os.path.join(os.path.dirname(__file__), "catalogue")
PACKAGE_START = LETTERS | DIGITS  # [A-Za-z0-9]
PACKAGE_CHARS = WORD_CHARS | {"-"}  # [A-Za-z0-9_-]


@datatype
class Found:
    name: str
    path: str
    catalogue: str


def search_path(extra: Sequence[str], env: Mapping[str, str]) -> list[str]:
    folders = [os.path.abspath(folder) for folder in extra]
    folders += [os.path.abspath(f) for f in env.get("IMCACHE_PATH", "").split(":") if f]
    folders.append(BUILTIN)
    return folders


def resolve(name: str, folders: Sequence[str]) -> Interface:
    return load_found(find(name, folders))


def load_found(found: Found) -> Interface:
    """The definition `find` found: a Boutiques file, or nipype's description of its class."""
    if found.catalogue.startswith("nipype "):
        from imcache.core.interfaces.nipype_source import load_nipype_interface

        return load_nipype_interface(found.path, found.name)
    return load_interface(found.path, found.name)


def find(name: str, folders: Sequence[str]) -> Found:
    parsed = split_name(name)
    if parsed is None or parsed[1] in (".", ".."):
        raise UsageError(
            f"{name!r} is not an interface name",
            "names look like PACKAGE.Name (fsl.Merge); 'imcache interfaces' lists them",
        )
    package, tool = parsed
    for folder in folders:
        path = _lookup(folder, package, tool)
        if path is not None:
            return Found(name, path, folder)
    from imcache.core.interfaces.nipype_source import find_description  # last on the path

    described = find_description(package, tool)
    if described is not None:
        return Found(name, *described)
    from imcache.core.suggest import did_you_mean  # only for a misspelt name

    close = did_you_mean(name, {item.name for item in list_all(folders)}, n=3, any_case=True)
    suggestion = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownInterfaceError(
        f"unknown interface {name!r}",
        f"{suggestion}'imcache interfaces' lists what is available",
    )


def _lookup(folder: str, package: str, tool: str) -> str | None:
    flat = os.path.join(folder, package, f"{tool}.json")
    if os.path.isfile(flat):
        return flat
    package_dir = os.path.join(folder, package)
    if not os.path.isdir(package_dir):
        return None
    for version in sorted(_versions(package_dir), key=_version_key, reverse=True):
        nested = os.path.join(package_dir, version, tool, "boutiques.json")
        if os.path.isfile(nested):
            return nested
    return None


def _versions(package_dir: str) -> list[str]:
    try:
        return [e.name for e in os.scandir(package_dir) if e.is_dir()]
    except OSError:
        return []


def split_name(name: str) -> tuple[str, str] | None:
    r"""PACKAGE and Name, as `re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9_-]*)\.([^/\\\0]+)", name)`
    groups them (with str methods: a hit does not import re), or None."""
    package, dot, tool = name.partition(".")
    if not dot or not package or package[0] not in PACKAGE_START:
        return None
    if not all(char in PACKAGE_CHARS for char in package) or not tool:
        return None
    return None if any(char in "/\\\0" for char in tool) else (package, tool)


def _version_key(version: str) -> list[tuple[int, str]]:
    import re  # listing versions only

    return [(int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.\-_]", version)]


def list_all(folders: Sequence[str]) -> Iterator[Found]:
    """Every definition on the path, in search order; a later one of the same name is shadowed."""
    for folder in folders:
        yield from _list_folder(folder)


def _list_folder(folder: str) -> Iterator[Found]:
    try:
        packages = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    except OSError:
        return
    for package in packages:
        package_dir = os.path.join(folder, package)
        for entry in sorted(os.scandir(package_dir), key=lambda e: e.name):
            if entry.is_file() and entry.name.endswith(".json"):
                yield Found(f"{package}.{entry.name[:-5]}", entry.path, folder)
        seen: set[str] = set()
        for version in sorted(_versions(package_dir), key=_version_key, reverse=True):
            version_dir = os.path.join(package_dir, version)
            for tool in sorted(_versions(version_dir)):
                path = os.path.join(version_dir, tool, "boutiques.json")
                if tool not in seen and os.path.isfile(path):
                    seen.add(tool)
                    yield Found(f"{package}.{tool}", path, folder)


class DefinitionMemo:
    """One interface's definition as last loaded, for a caller that resolves it again and again
    (the Python face, in a loop): looked up along the search path each time, read again when the
    file found is another or has changed. A file changed within the last seconds is always read
    again (a write in the same timestamp tick as our reading would not show)."""

    RECENT_NS = 2 * 10**9

    def __init__(self, name: str, folders: Sequence[str]) -> None:
        self.name = name
        self.folders = tuple(folders)
        # One tuple, replaced whole: threads sharing the memo never pair a file's signature
        # with another version's definition.
        self._last: tuple[tuple[str, int, int, int] | None, Interface] | None = None

    def current(self) -> Interface:
        found = find(self.name, self.folders)
        info = os.stat(found.path)
        signature = (found.path, info.st_ino, info.st_size, info.st_mtime_ns)
        last = self._last
        if last is not None and last[0] == signature:
            return last[1]
        interface = load_found(found)
        fresh = time.time_ns() - info.st_mtime_ns < self.RECENT_NS
        self._last = (None if fresh else signature, interface)
        return interface
