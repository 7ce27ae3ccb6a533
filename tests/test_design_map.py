"""docs/design.md maps every module of the package: a module the page does not name fails here,
and so does a name on the page that is no module (a map that lies is worse than none)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "src" / "imcache"
PAGE = REPO / "docs" / "design.md"
# A map line: two spaces, the module's path below src/imcache/ in backquotes, its one-line role.
MAP_LINE = re.compile(r"^- `((?:[a-z_]+/)*[a-z_]+\.py)`: \S")


def mapped_modules() -> set[str]:
    text = PAGE.read_text(encoding="utf-8")
    section = text.split("## Modules", 1)[1].split("\n## ", 1)[0]
    return {m.group(1) for line in section.splitlines() if (m := MAP_LINE.match(line))}


def package_modules() -> set[str]:
    return {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "__init__.py" or path.parent == PACKAGE
    }


def test_every_module_is_on_the_map() -> None:
    missing = package_modules() - mapped_modules()
    assert not missing, f"docs/design.md does not name: {sorted(missing)}"


def test_every_name_on_the_map_is_a_module() -> None:
    stale = mapped_modules() - package_modules()
    assert not stale, f"docs/design.md names modules that do not exist: {sorted(stale)}"


def test_the_core_never_imports_a_face() -> None:
    """The layering rule the page states: core -> nothing above it; cli and api never meet."""
    face = re.compile(r"^\s*(from|import) (click|rich|imcache\.cli|imcache\.api)\b", re.M)
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "core").rglob("*.py")
        if face.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
