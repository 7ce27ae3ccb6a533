"""--since, --older-than and --max-size as a person types them: the forms taken, and one-line
usage errors (exit 2, nothing removed) for everything else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from imcache.cli.params import parse_size
from tests.cache_entries import EntryMaker, present
from tests.conftest import imcache, run_imcache

pytestmark = pytest.mark.usefixtures("drop_own_holds")


@pytest.mark.parametrize(
    ("option", "value", "forms"),
    [
        ("--since", "yesterday", "YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
        ("--since", "2024-13-01", "YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
        ("--since", "01/05/2024", "YYYY-MM-DD or YYYY-MM-DDTHH:MM"),
        ("--older-than", "7", "s, m, h, d or w"),
        ("--older-than", "7 days", "s, m, h, d or w"),
        ("--older-than", "-3d", "s, m, h, d or w"),
        ("--older-than", "3y", "s, m, h, d or w"),
        ("--max-size", "lots", "k, M, G, T"),
        ("--max-size", "10X", "k, M, G, T"),
        ("--max-size", "-1G", "k, M, G, T"),
        ("--max-size", "1e9", "k, M, G, T"),
    ],
)
def test_bad_policy_values_are_usage_errors(
    make_entry: EntryMaker, cache_root: Path, option: str, value: str, forms: str
) -> None:
    entry = make_entry("merged.nii")
    result = imcache("clear", option, value, "--all")
    assert result.exit_code == 2, result.stderr
    assert f"{option} {value!r}" in result.stderr
    assert forms in result.stderr
    assert result.stdout == ""
    assert present(cache_root) == {entry.key}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500", 500),
        ("2k", 2000),
        ("2kB", 2000),
        ("1.5M", 1_500_000),
        ("3G", 3 * 10**9),
        ("1Ki", 1024),
        ("2MiB", 2 * 2**20),
        ("1 Gi", 2**30),
        ("1t", 10**12),
    ],
)
def test_size_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def fake_entry(cache_root: Path) -> str:
    """A complete entry without a tool run: what a clear could remove."""
    from imcache.core.store import Store

    store = Store(str(cache_root))
    key = "c" * 32
    store.publish(store.prepare_entry("pkg.Tool", key), {"layout": 1, "key": key})
    return key


@pytest.mark.parametrize(
    ("option", "value", "zone"),
    [
        ("--since", "0001-01-01", "UTC"),
        ("--since", "0001-01-01T23:59", "America/Los_Angeles"),
        ("--since", "9999-12-31T23:59", "Asia/Tokyo"),
        ("--older-than", "9" * 400 + "d", "UTC"),
        ("--older-than", "1" + "0" * 18 + "s", "UTC"),
        ("--max-size", "9" * 400, "UTC"),
        ("--max-size", "1" * 19 + "Ti", "UTC"),
    ],
    ids=[
        "year-1",
        "year-1-west",
        "year-9999-east",
        "age-400-digits",
        "age-19-digits",
        "size-400-digits",
        "size-19-digits",
    ],
)
def test_values_out_of_range_are_one_line_usage_errors(
    cache_root: Path, option: str, value: str, zone: str
) -> None:
    key = fake_entry(cache_root)
    done = run_imcache("clear", option, value, "--all", env={**os.environ, "TZ": zone})
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [done.stderr.rstrip("\n")], done.stderr  # one line
    assert f"{option} {value!r} is out of range" in done.stderr
    assert "internal error" not in done.stderr
    assert done.stdout == ""
    assert present(cache_root) == {key}


@pytest.mark.parametrize(
    ("option", "value", "zone", "goes"),
    [
        ("--since", "0001-01-02", "Asia/Tokyo", False),
        ("--since", "0001-01-02", "America/Los_Angeles", False),
        ("--since", "9999-12-30T23:59", "Asia/Tokyo", True),
        ("--since", "9999-12-30T23:59", "America/Los_Angeles", True),
        ("--older-than", "9" * 18 + "w", "UTC", False),
        ("--max-size", "9" * 18 + "Ti", "UTC", False),
    ],
)
def test_values_at_the_edge_of_the_range_are_taken(
    cache_root: Path, option: str, value: str, zone: str, goes: bool
) -> None:
    """What the refusals above say is the range holds: its first and last days, and 18 digits."""
    key = fake_entry(cache_root)
    done = run_imcache("clear", option, value, "--json", env={**os.environ, "TZ": zone})
    assert done.returncode == 0, done.stderr
    removed = {row["key"] for row in json.loads(done.stdout)["removed"]}
    assert removed == ({key} if goes else set())
    assert present(cache_root) == (set() if goes else {key})
