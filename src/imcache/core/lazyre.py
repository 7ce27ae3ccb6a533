"""Regular expressions compiled when first used, so that a hit does not import `re`.

`re` (with the `enum`, `functools` and `collections` it loads) costs a hit more than most of
what it does; a pattern that a hit never matches is compiled the first time it is matched.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re


def lazy_pattern(source: str, flags: int = 0) -> re.Pattern[str]:
    """`re.compile(source, flags)`, compiled on its first use."""
    return _LazyPattern(source, flags)  # type: ignore[return-value]  # a stand-in


class _LazyPattern:
    """Stands in for the compiled pattern: any attribute (`fullmatch`, `sub`, `pattern`...)
    compiles it, once, and is then the compiled pattern's own."""

    __slots__ = ("_compiled", "_flags", "_source")

    def __init__(self, source: str, flags: int) -> None:
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> object:
        if self._compiled is None:
            import re

            self._compiled = re.compile(self._source, self._flags)
        return getattr(self._compiled, name)

    def __repr__(self) -> str:
        return f"lazy_pattern({self._source!r})"
