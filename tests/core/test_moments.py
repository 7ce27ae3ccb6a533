"""Moments as listings show them: the batch form is the one-by-one form."""

from __future__ import annotations

import random
import time

import pytest

from imcache.core.moments import format_time, format_times


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata"])
def test_format_times_is_format_time_of_each(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        rng = random.Random(17)
        now = time.time_ns()
        moments = [now - rng.randrange(0, 400 * 86400 * 10**9) for _ in range(3000)]
        moments += [10**18 + fraction for fraction in (0, 999_999_000, 999_999_499, 999_999_999)]
        moments += [1711846800 * 10**9 + second * 10**9 for second in range(-5, 5)]  # a DST hour
        assert format_times(moments) == [format_time(ns) for ns in moments]
        assert format_times(moments) == [format_time(ns) for ns in moments]  # its caches warm
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_format_times_follows_a_change_of_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    moments = [time.time_ns()]
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    in_utc = format_times(moments)
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert format_times(moments) != in_utc
        assert format_times(moments) == [format_time(moments[0])]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
