"""The shape of one value in a definition: the JSON type checks every section of the loader shares.

`Context.fail` raises the loader's one error, `DefinitionError`, naming the file and the field;
`where` is the field's path in the file (`inputs[2] (id "level").minimum`).
"""

from __future__ import annotations

import sys

from imcache.core.errors import DefinitionError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn


class Context:
    """Where we are in the file, for error messages that point at the field."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nesting = 0  # how many sub-command bodies the field is inside

    def fail(self, field: str, problem: str) -> NoReturn:
        raise DefinitionError(self.source, _one_line(field), _one_line(problem))

    def elements(
        self, value: object, where: str, problem: str = "must be a list"
    ) -> list[tuple[str, object]]:
        """A list's items, each with where it is (`where[index]`), or a refusal of `value`."""
        if not isinstance(value, list):
            self.fail(where, problem)
        items: list[object] = value
        return [(f"{where}[{index}]", item) for index, item in enumerate(items)]

    def mapping(self, value: object, where: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where or "(top level)", "must be a JSON object")
        obj: dict[str, Any] = value
        for key in obj:
            if key not in allowed:
                self.fail(join(where, key), f"unknown property{suggestion(key, allowed)}")
        return obj

    def json_object(self, value: object, where: str) -> dict[str, Any]:
        """An object whose keys are the definition's own names (input ids, map names)."""
        if not isinstance(value, dict):
            self.fail(where, "must be a JSON object")
        return value

    def string_map(self, value: object, where: str) -> dict[str, str]:
        obj = self.json_object(value, where)
        for key, item in obj.items():
            if not isinstance(item, str):
                self.fail(join(where, key), "must be a string")
        return obj

    def text(self, obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
        if key not in obj:
            if default is not None:
                return default
            self.fail(where, "is required")
        value = obj[key]
        if not isinstance(value, str):
            self.fail(where, f"must be a string, not {json_type(value)}")
        return value

    def optional_text(self, obj: dict[str, Any], key: str, where: str) -> str | None:
        if key not in obj:
            return None
        return self.text(obj, key, join(where, key))

    def boolean(self, obj: dict[str, Any], key: str, where: str) -> bool:
        value = obj.get(key, False)
        if not isinstance(value, bool):
            self.fail(join(where, key), f"must be true or false, not {json_type(value)}")
        return value

    def number(self, obj: dict[str, Any], key: str, where: str) -> float | None:
        if key not in obj:
            return None
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(join(where, key), f"must be a number, not {json_type(value)}")
        if isinstance(value, int) and abs(value) > sys.float_info.max:  # 1e400 reads as inf
            self.fail(join(where, key), "must be a finite number, not one beyond 1.8e308")
        import math  # a definition with numbers only

        if not math.isfinite(value):
            self.fail(join(where, key), f"must be a finite number, not {value}")
        return value

    def count(self, obj: dict[str, Any], key: str, where: str) -> int | None:
        if key not in obj:
            return None
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(join(where, key), "must be a whole number >= 0")
        return value

    def id_list(self, obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = obj.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(join(where, key), "must be a list of ids")
        return tuple(value)


def _one_line(text: str) -> str:
    """A key or a value of the file quoted in a message must not make it two lines (or clear the
    screen): control characters are shown escaped, as Python writes them."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def json_type(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else "null"
    )


def suggestion(word: str, candidates: set[str] | frozenset[str]) -> str:
    """` (did you mean 'input'?)` after a misspelt name, or nothing."""
    from imcache.core.suggest import did_you_mean  # only for a misspelt name

    close = did_you_mean(word, candidates)
    return f" (did you mean {close[0]!r}?)" if close else ""
