"""The values of `clear`'s bounds as a person types them: click ParamTypes that hand the core
moments (epoch nanoseconds) and counts, and refuse anything else as a one-line usage error.

--since DATE: `2024-05-01` or `2024-05-01T14:30[:SS]`, local time (or with its own offset);
--older-than AGE: a number and a unit (30d, 12h, 1.5w); --max-size SIZE: a number and an
optional unit (20G, 500Mi). A refusal names the option and the value as typed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import click

from imcache.core.errors import UsageError

DATE_FORMS = "use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS] (local time)"
DATE_RANGE = "use a date from 0001-01-02 to 9999-12-30 (local time)"  # whole days any zone takes
AGE_FORMS = "use a number and a unit: s, m, h, d or w (30d, 12h, 1.5w)"
SIZE_FORMS = (
    "use a number and an optional unit: k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti "
    "(powers of 1024), e.g. 20G or 500Mi"
)
MAX_DIGITS = 18  # before the point: more is no age or size anyone means (and overflows a float)

AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(|k|m|g|t|ki|mi|gi|ti)b?", re.IGNORECASE)
SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
SIZE_UNITS.update({"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40})


class BadValue(ValueError):
    """What is wrong with a value (`is not a date`), and what to type instead."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


def parse_since(text: str) -> int:
    """A date or a date and time, local unless it says its offset, as epoch nanoseconds."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadValue("is not a date", DATE_FORMS) from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone()  # a naive time is local time
        return int(moment.timestamp() * 10**9)
    except (ValueError, OverflowError, OSError):  # the first or last day, moved by the zone
        raise BadValue("is out of range", DATE_RANGE) from None


def parse_age(text: str) -> int:
    """An age as nanoseconds."""
    match = AGE.fullmatch(text.strip().lower())
    if match is None:
        raise BadValue("is not an age", AGE_FORMS)
    return int(_number(match.group(1), "30d, 12h, 1.5w") * AGE_UNITS[match.group(2)] * 10**9)


def parse_size(text: str) -> int:
    """A size as bytes."""
    match = SIZE.fullmatch(text.strip())
    if match is None:
        raise BadValue("is not a size", SIZE_FORMS)
    return int(_number(match.group(1), "20G, 500Mi") * SIZE_UNITS[match.group(2).lower()])


def _number(digits: str, examples: str) -> float:
    if len(digits.partition(".")[0]) > MAX_DIGITS:
        hint = f"use a number of at most {MAX_DIGITS} digits before the point, as in {examples}"
        raise BadValue("is out of range", hint)
    return float(digits)


class Typed(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.4 only
    """A value that `parse` reads; a refusal is a usage error naming the option and the value."""

    def __init__(self, name: str, parse: Callable[[str], int]) -> None:
        self.name = name
        self.parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int):
            return value  # a default, or converted already
        try:
            return self.parse(str(value))
        except BadValue as bad:
            option = param.opts[0] if param is not None and param.opts else self.name
            raise UsageError(f"{option} {value!r} {bad.problem}", bad.hint) from None


MOMENT = Typed("date", parse_since)  # epoch nanoseconds
AGE_NS = Typed("age", parse_age)  # nanoseconds
BYTES = Typed("size", parse_size)
