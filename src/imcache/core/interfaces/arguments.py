"""Turn the words after `imcache run NAME` (or Python's keyword values) into raw values.

`--in-files a b c` gives a list input every word up to the next option; a Flag is a switch;
`--opt=value` passes a value that starts with `--`. Both `--in-files` and `--in_files` work.
"""

from __future__ import annotations

import os

from imcache.core.errors import UsageError
from imcache.core.interfaces.model import InputSpec, Interface

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import NoReturn

RawValues = dict[str, list[str] | bool]


def option_table(interface: Interface) -> dict[str, InputSpec]:
    """Every spelling of every input's option: `--in-files` and `--in_files`."""
    table: dict[str, InputSpec] = {}
    for spec in interface.inputs:
        table[spec.option] = spec
        if spec.option.startswith("--input-"):
            continue  # `--force` and the like belong to `imcache run` itself
        table.setdefault("--" + spec.id, spec)
    return table


def parse_words(interface: Interface, words: list[str]) -> RawValues:
    table = option_table(interface)
    raw: RawValues = {}
    current: InputSpec | None = None
    for word in words:
        if _is_option(word):
            name, has_value, value = word.partition("=")
            current = _lookup(interface, table, name)
            _start(interface, raw, current, name)
            if has_value:
                _add(interface, raw, current, name, value)
            if current.type == "Flag" or (has_value and not current.is_list):
                current = None
        elif current is None:
            raise UsageError(
                f"unexpected argument {word!r} for {interface.name}",
                f"values follow an option; see 'imcache run {interface.name} --help'",
            )
        else:
            _add(interface, raw, current, current.option, word)
            if not current.is_list:
                current = None
    for input_id, given in raw.items():
        if given == []:
            spec = interface.body.input(input_id)
            raise UsageError(f"{spec.option} of {interface.name} needs a value", _usage(interface))
    return raw


def _is_option(word: str) -> bool:
    return word.startswith("--") and len(word) > 2


def _lookup(interface: Interface, table: dict[str, InputSpec], name: str) -> InputSpec:
    if name in table:
        return table[name]
    from imcache.core.suggest import did_you_mean  # only for a mistyped name

    close = did_you_mean(name, table)
    suggestion = f"did you mean {close[0]}? " if close else ""
    raise UsageError(
        f"{interface.name} has no option {name if name.isprintable() else repr(name)}",
        f"{suggestion}see 'imcache run {interface.name} --help'",
    )


def _start(interface: Interface, raw: RawValues, spec: InputSpec, name: str) -> None:
    if spec.type == "Flag":
        if spec.id in raw:
            raise UsageError(f"{name} of {interface.name} is given twice", _usage(interface))
        raw[spec.id] = True
    elif spec.id not in raw:
        raw[spec.id] = []
    elif not spec.is_list:
        raise UsageError(
            f"{name} of {interface.name} takes one value and is given twice", _usage(interface)
        )


def _add(interface: Interface, raw: RawValues, spec: InputSpec, name: str, value: str) -> None:
    if spec.type == "Flag":
        raise UsageError(
            f"{name} of {interface.name} is a switch and takes no value", _usage(interface)
        )
    values = raw[spec.id]
    assert isinstance(values, list)
    values.append(value)


def _usage(interface: Interface) -> str:
    return f"see 'imcache run {interface.name} --help'"


def given_values(interface: Interface, given: Mapping[str, object]) -> dict[str, object]:
    """Python keyword values as the raw form `parse_words` makes, one entry per input id.

    Only the Python types are mapped here (paths to text, tuples to lists, `None` and a `False`
    switch to "not given", as a command line can only leave them out); every check of the values
    themselves is `resolve_values`'s, the same for both faces.
    """
    by_id = {spec.id: spec for spec in interface.inputs}
    raw: dict[str, object] = {}
    for name, value in given.items():
        spec = by_id.get(name)
        if spec is None:
            _unknown_input(interface, name, sorted(by_id))
        if value is None or (spec.type == "Flag" and value is False):
            continue
        raw[name] = _plain(value)
    return raw


def _plain(value: object) -> object:
    """A Python value in the types the checks know: str, int, float, bool, list, dict."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        return path if isinstance(path, str) else os.fsdecode(path)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    from collections.abc import Mapping  # a Python caller's values only: not on a CLI hit

    if isinstance(value, Mapping):  # a sub-command's values, by id
        return {str(key): _plain(item) for key, item in value.items()}
    if hasattr(value, "__index__"):  # numpy's integers and the like
        return int(value.__index__())
    if hasattr(value, "__float__"):  # numpy's floats, Decimal
        return float(value.__float__())
    return value  # left for the checks to name


def _unknown_input(interface: Interface, name: str, known: list[str]) -> NoReturn:
    from imcache.core.suggest import did_you_mean  # only for a mistyped name

    close = did_you_mean(name, known)
    suggestion = f"did you mean {close[0]}? " if close else ""
    raise UsageError(
        f"{interface.name} has no input {name if name.isprintable() else repr(name)}",
        f"{suggestion}its inputs are: {', '.join(known) or 'none'}",
    )
