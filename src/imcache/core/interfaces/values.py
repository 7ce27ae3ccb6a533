"""Check raw values against an interface and turn them into typed values, defaults applied.

Everything here raises `UsageError` (exit 2) naming the option at fault: nothing has run yet.
"""

from __future__ import annotations

import os
import stat

from imcache.core.errors import UsageError
from imcache.core.interfaces.arguments import RawValues
from imcache.core.interfaces.model import (
    Body,
    FileArg,
    InputSpec,
    Interface,
    Scalar,
    SubArg,
    Value,
    Values,
)
from imcache.core.interfaces.templates import Field, expand

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import NoReturn

# How a face names an input in a message: the command line's option, or Python's keyword.
CLI_NAMES = "--"
PYTHON_NAMES = ""


def resolve_values(
    interface: Interface,
    raw: RawValues | Mapping[str, object],
    env: Mapping[str, str],
    cwd: str,
    names: str = CLI_NAMES,
) -> Values:
    """Typed, checked values for every input that has one, defaults and derived defaults applied.

    `raw` comes from either face (`parse_words` or `given_values`): one set of checks for both;
    `names` says how a message names an input (`--in-files` or `in_files`)."""
    checker = _Checker(interface.name, cwd, names)
    values = checker.body_values(interface.body, dict(raw), prefix=names)
    for rule in interface.extension.rules:
        if rule.if_set in values:
            for input_id, allowed in rule.require.items():
                if str(values.get(input_id)) not in allowed:
                    checker.fail(
                        f"{_opt(names, interface.body.input(rule.if_set))} needs "
                        f"{_opt(names, interface.body.input(input_id))} to be one of "
                        f"{list(allowed)}"
                    )
    _apply_derived_defaults(interface, values, env, checker)
    return values


def relevant_env(interface: Interface, env: Mapping[str, str]) -> dict[str, str]:
    """The declared environment variables that change results, with their defaults filled in."""
    chosen = {}
    for spec in interface.extension.env:
        value = env.get(spec.name) or spec.default
        if spec.choices and value not in spec.choices:
            raise UsageError(
                f"environment variable {spec.name}={value!r} is not one of {list(spec.choices)}",
                f"set {spec.name} to one of them, or unset it for {spec.default!r}",
            )
        chosen[spec.name] = value
    return chosen


def _opt(prefix: str, spec: InputSpec) -> str:
    return spec.option if prefix == CLI_NAMES else f"{prefix}{spec.id}"


class _Checker:
    def __init__(self, interface_name: str, cwd: str, names: str = CLI_NAMES) -> None:
        self.interface_name = interface_name
        self.cwd = cwd
        self.names = names

    def fail(self, message: str) -> NoReturn:
        name = self.interface_name
        where = f"'imcache run {name} --help'" if self.names == CLI_NAMES else f"help() of {name}"
        raise UsageError(f"{name}: {message}", f"see {where}")

    def body_values(self, body: Body, raw: dict[str, object], prefix: str) -> Values:
        values: Values = {}
        for spec in body.inputs:
            if spec.id in raw:
                values[spec.id] = self.value(spec, raw[spec.id], prefix)
        self.check_relations(body, values, prefix)
        self.apply_defaults(body, values)
        for spec in body.inputs:
            if not spec.optional and spec.id not in values:
                self.fail(f"{_opt(prefix, spec)} is required ({spec.name})")
        return values

    def value(self, spec: InputSpec, raw: object, prefix: str) -> Value:
        name = _opt(prefix, spec)
        if spec.type == "Flag":
            if not isinstance(raw, bool):
                self.fail(f"{name} is a switch: true or false, not {raw!r}")
            return raw
        items = raw if isinstance(raw, list) else [raw]
        if not spec.is_list:
            if len(items) != 1:
                self.fail(f"{name} takes one value, not {len(items)}")
            return self.scalar(spec, items[0], name)
        low, high = spec.min_entries, spec.max_entries
        if low is not None and len(items) < low:
            self.fail(f"{name} takes at least {low} values, got {len(items)}")
        if high is not None and len(items) > high:
            self.fail(f"{name} takes at most {high} values, got {len(items)}")
        return [self.scalar(spec, item, name) for item in items]

    def scalar(self, spec: InputSpec, raw: object, name: str) -> Scalar:
        if spec.type == "Sub":
            return self.sub(spec, raw, name)
        if spec.type == "Number":
            return self.number(spec, raw, name)
        if not isinstance(raw, str):
            self.fail(f"{name} takes a {spec.type.lower()}, not {raw!r}")
        self.check_text(raw, name)
        if spec.choices is not None and raw not in [str(c) for c in spec.choices]:
            self.fail(f"{name} {raw!r} is not one of {[str(c) for c in spec.choices]}")
        if spec.type == "File":
            return self.file(raw, name)
        return raw

    def check_text(self, text: str, name: str) -> None:
        """Text that can reach an argv: no NUL byte, nothing that is not bytes of a file name."""
        if "\0" in text:
            self.fail(f"{name} contains a NUL character, which no command line can carry")
        try:
            text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            self.fail(f"{name} {text!r} is not valid text")

    def number(self, spec: InputSpec, raw: object, name: str) -> int | float:
        number = _parse_number(raw)
        if number is None:
            self.fail(f"{name} takes a number, not {raw!r}")
        if spec.choices is not None and number not in spec.choices:
            self.fail(f"{name} {raw!r} is not one of {list(spec.choices)}")
        problem = spec.number_problem(number)
        if problem:
            self.fail(f"{name} {problem}, not {raw!r}")
        return number

    def file(self, given: str, name: str) -> FileArg:
        if given == "" or "\0" in given:
            self.fail(f"{name} {given!r} is not a file name")
        path = os.path.abspath(os.path.join(self.cwd, given))
        try:
            info = os.stat(path)
        except FileNotFoundError:
            self.fail(f"{name} {given!r}: no such file or folder ({path!r})")
        except OSError as exc:
            self.fail(f"{name} {given!r}: cannot be read ({exc.strerror})")
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
            self.fail(f"{name} {given!r} is neither a regular file nor a folder")
        if not os.access(path, os.R_OK | (os.X_OK if stat.S_ISDIR(info.st_mode) else 0)):
            self.fail(f"{name} {given!r}: permission denied ({path!r})")
        return FileArg(given=given, path=path)

    def sub(self, spec: InputSpec, raw: object, name: str) -> SubArg:
        """A sub-command value is a JSON object: its inputs by id, `@type` picking the variant."""
        if isinstance(raw, str):
            import json  # a sub-command's value only

            try:
                raw = json.loads(raw)
            except (json.JSONDecodeError, RecursionError):
                self.fail(
                    f"{name} takes a JSON object such as '{{\"@type\": ..., ...}}', not {raw!r}"
                )
        if not isinstance(raw, dict):
            self.fail(f"{name} takes a JSON object, not {raw!r}")
        variants = {variant.id: variant for variant in spec.variants}
        chosen = raw.get("@type", spec.variants[0].id if len(variants) == 1 else None)
        if not isinstance(chosen, str) or chosen not in variants:
            self.fail(f'{name} needs "@type" set to one of {sorted(variants)}')
        body = variants[chosen]
        fields = {key: value for key, value in raw.items() if key != "@type"}
        known = {item.id for item in body.inputs}
        for key in fields:
            self.check_text(key, name)
            if key not in known:
                self.fail(f"{name}: {chosen} has no input {key!r} (it has {sorted(known)})")
        typed = self.body_values(body, {k: v for k, v in fields.items()}, prefix=f"{name}.")
        return SubArg(variant=str(chosen), values=typed)

    def check_relations(self, body: Body, values: Values, prefix: str) -> None:
        by_id = {spec.id: spec for spec in body.inputs}
        groups = {group.id: group for group in body.groups}
        for spec in body.inputs:
            if spec.id not in values:
                continue
            for ref in spec.requires:
                members = groups[ref].members if ref in groups else (ref,)
                if not any(member in values for member in members):
                    self.fail(
                        f"{_opt(prefix, spec)} requires {self._names(prefix, by_id, members)}"
                    )
            for ref in spec.disables:
                if ref in values:
                    self.fail(
                        f"{_opt(prefix, spec)} cannot be used with {_opt(prefix, by_id[ref])}"
                    )
            chosen = str(values[spec.id])
            for ref in spec.value_requires.get(chosen, ()):
                if ref not in values:
                    self.fail(f"{_opt(prefix, spec)} {chosen} requires {_opt(prefix, by_id[ref])}")
            for ref in spec.value_disables.get(chosen, ()):
                if ref in values:
                    self.fail(
                        f"{_opt(prefix, spec)} {chosen} cannot be used with "
                        f"{_opt(prefix, by_id[ref])}"
                    )
        for group in body.groups:
            given = [member for member in group.members if member in values]
            names = self._names(prefix, by_id, group.members)
            if group.mutually_exclusive and len(given) > 1:
                self.fail(f"only one of {names} may be given")
            if group.one_is_required and not given:
                self.fail(f"one of {names} is required")
            if group.all_or_none and given and len(given) != len(group.members):
                self.fail(f"{names} go together: give all of them or none")

    def _names(self, prefix: str, by_id: dict[str, InputSpec], ids: tuple[str, ...]) -> str:
        return ", ".join(_opt(prefix, by_id[i]) if i in by_id else i for i in ids)

    def apply_defaults(self, body: Body, values: Values) -> None:
        """Boutiques defaults, except where a given input disables or excludes them."""
        blocked: set[str] = set()
        for spec in body.inputs:
            if spec.id in values:
                blocked.update(spec.disables)
                blocked.update(spec.value_disables.get(str(values[spec.id]), ()))
        for group in body.groups:
            if group.mutually_exclusive and any(m in values for m in group.members):
                blocked.update(group.members)
        for spec in body.inputs:
            if spec.default is None or spec.id in values or spec.id in blocked:
                continue
            values[spec.id] = self.value(spec, spec.default, f"default of {self.names}")


def _parse_number(raw: object) -> int | float | None:
    import math  # a Number input only: most hits have none

    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return raw if math.isfinite(raw) else None
    if not isinstance(raw, str):
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def template_lookup(values: Values, declared: Mapping[str, str]) -> Callable[[Field], str | None]:
    """How a template field finds its text: an input's value (a File's file name, without the
    folder it was given from) or a declared environment variable; None where the input has no
    value."""

    def lookup(field: Field) -> str | None:
        if field.env:
            return declared[field.source]
        value = values.get(field.source)
        if isinstance(value, list):
            index = field.index or 0  # [-1] is the last item, as in Python
            value = value[index] if -len(value) <= index < len(value) else None  # none: no default
        if value is None:
            return None
        # A File is its name: the folder it was given from is not in the key (the same data
        # elsewhere hits), so it must not name outputs either.
        return os.path.basename(value.given) if isinstance(value, FileArg) else str(value)

    return lookup


def _apply_derived_defaults(
    interface: Interface, values: Values, env: Mapping[str, str], checker: _Checker
) -> None:
    lookup = template_lookup(values, relevant_env(interface, env))

    def fail(problem: str) -> NoReturn:
        checker.fail(f"default of {problem}")

    for input_id, templates in interface.extension.defaults.items():
        if input_id in values:
            continue
        for template in templates:  # the first whose fields all have values
            text = expand(template, lookup, interface.extension.maps, fail)
            if text is not None:
                spec = interface.body.input(input_id)
                values[input_id] = checker.value(spec, text, checker.names)
                break
