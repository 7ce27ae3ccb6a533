"""Moments as listings show them: local ISO time to the second (`format_time`), made fast
enough for `ls` at 100,000 entries (two moments each)."""

from __future__ import annotations

import math
import time
from itertools import compress, repeat
from operator import add, floordiv, ge, mod, or_


def format_time(ns: int) -> str:
    """A moment as local ISO time to the second, as listings and sessions show it.

    What `datetime.fromtimestamp(ns / 1e9).astimezone().isoformat(timespec="seconds")` gives
    (a test holds them together), at a tenth of its cost: `ls` formats two per entry, and
    entries share their hours, whose zone offset and date are worked out once each."""
    whole, fraction = divmod(ns, 10**9)
    if fraction >= 999_999_000:  # fromtimestamp rounds its float to microseconds: as it does
        seconds = ns / 1e9
        whole = math.floor(seconds)
        if round((seconds - whole) * 1e6) >= 1_000_000:
            whole += 1
    if time.tzname is not _TZNAME[0]:  # time.tzset() read another zone: forget the old one
        _ZONES.clear()
        _TZNAME[0] = time.tzname
    hour = whole // 3600
    zone = _ZONES[hour] if hour in _ZONES else _zone_of(hour)
    if zone is None:  # the offset changes within this hour: this second's own
        return _format_local(time.localtime(whole))
    offset, zone_text = zone
    local = whole + offset
    day_hour = _HOURS.get(local // 3600) or _hour_text(local // 3600)
    return day_hour + (_MINUTES or _minutes())[local % 3600] + zone_text


_ZONES: dict[int, tuple[int, str] | None] = {}  # UTC hour -> the zone's offset and its text
_TZNAME = [time.tzname]  # the zone _ZONES is about
_HOURS: dict[int, str] = {}  # local hour -> "YYYY-MM-DDTHH:"
_MINUTES: list[str] = []  # second of the hour -> "MM:SS"


def format_times(moments: list[int]) -> list[str]:
    """`format_time` of each moment (a test holds them together), in C loops over the list
    (`map` of operators and of the caches' lookups): the common case, a whole second of a
    settled hour, needs no Python call per moment; the rest are made one by one."""
    if time.tzname is not _TZNAME[0]:
        format_time(0)  # forgets the zone `_ZONES` was about
    wholes = list(map(floordiv, moments, repeat(SECOND)))
    hours = list(map(floordiv, wholes, repeat(3600)))
    seen = set(hours)
    for hour in seen.difference(_ZONES):
        _zone_of(hour)
    changing = {hour for hour in seen if _ZONES[hour] is None}  # its offset changes within it
    zones = {hour: _ZONES[hour] or (0, "") for hour in seen}
    offsets = {hour: zone[0] for hour, zone in zones.items()}
    texts = {hour: zone[1] for hour, zone in zones.items()}
    local = list(map(add, wholes, map(offsets.__getitem__, hours)))
    local_hours = list(map(floordiv, local, repeat(3600)))
    for local_hour in set(local_hours).difference(_HOURS):
        _hour_text(local_hour)
    minutes = _MINUTES or _minutes()
    shown = list(
        map(
            add,
            map(
                add,
                map(_HOURS.__getitem__, local_hours),
                map(minutes.__getitem__, map(mod, local, repeat(3600))),
            ),
            map(texts.__getitem__, hours),
        )
    )
    rounded = map(ge, map(mod, moments, repeat(SECOND)), repeat(999_999_000))  # as format_time
    odd = map(changing.__contains__, hours) if changing else repeat(False)
    for number in compress(range(len(moments)), map(or_, rounded, odd)):
        shown[number] = format_time(moments[number])
    return shown


SECOND = 10**9


def _zone_of(hour: int) -> tuple[int, str] | None:
    """The local offset throughout this UTC hour, or None if it changes within it."""
    first, last = time.localtime(hour * 3600), time.localtime(hour * 3600 + 3599)
    offset = first.tm_gmtoff or 0
    zone = None if offset != (last.tm_gmtoff or 0) else (offset, _zone_text(offset))
    _ZONES[hour] = zone
    return zone


def _hour_text(local_hour: int) -> str:
    moment = time.gmtime(local_hour * 3600)
    text = _HOURS[local_hour] = (
        f"{moment.tm_year:04d}-{moment.tm_mon:02d}-{moment.tm_mday:02d}T{moment.tm_hour:02d}:"
    )
    return text


def _minutes() -> list[str]:
    _MINUTES.extend(f"{second // 60:02d}:{second % 60:02d}" for second in range(3600))
    return _MINUTES


def _zone_text(offset: int) -> str:
    sign, offset = ("-", -offset) if offset < 0 else ("+", offset)
    zone = f"{sign}{offset // 3600:02d}:{offset // 60 % 60:02d}"
    return zone + f":{offset % 60:02d}" if offset % 60 else zone


def _format_local(local: time.struct_time) -> str:
    return (
        f"{local.tm_year:04d}-{local.tm_mon:02d}-{local.tm_mday:02d}T"
        f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d}"
        f"{_zone_text(local.tm_gmtoff or 0)}"
    )
