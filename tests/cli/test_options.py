"""What the cache-reading commands share: long JSON listings in parts (two processes making
them give what one does), and the cyclic collector off while a command holds its entries."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Generator
from pathlib import Path

import pytest

from imcache.cli import fast, options
from imcache.cli.options import entries_json_parts, entry_json
from imcache.core.scan import Entry
from tests.cache_entries import EntryMaker, forks_noted, ok

pytestmark = pytest.mark.usefixtures("drop_own_holds")


def _entries(tmp_path: Path, count: int) -> list[Entry]:
    folder = tmp_path / "fsl.BET"
    return [
        Entry(
            folder.name,
            f"{number:032x}",
            str(folder / f"{number:032x}"),
            (1_700_000_000 + 7 * number) * 10**9 + number,
            (1_700_000_000 + 5 * number) * 10**9,
            number * 1000,
            json.dumps({"in_file": f"file 'a{number}.nii'"}).encode(),
            number + 1,
        )
        for number in range(count)
    ]


def _inputs(entries: list[Entry]) -> list[str]:
    return [entry.summary.decode() for entry in entries]  # type: ignore[union-attr]


def test_rows_made_by_two_processes_are_those_one_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(options, "PART", 7)  # parts of a few rows: many of them, an odd count
    forks = forks_noted(monkeypatch)
    entries = _entries(tmp_path, 100)
    for inputs in (None, _inputs):
        alone = "".join(entries_json_parts(entries, inputs))
        assert not forks
        together = "".join(entries_json_parts(entries, inputs, fork=True))
        assert len(forks) == 1
        forks.clear()
        assert together == alone
        rows = [
            entry_json(e) | ({} if inputs is None else {"inputs": json.loads(e.summary)})
            for e in entries
        ]  # type: ignore[arg-type]
        assert together == json.dumps(rows)


def test_a_listing_stopped_early_leaves_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ls --json | head`: the child making the second half is stopped and reaped."""
    monkeypatch.setattr(options, "PART", 5)
    children = forks_noted(monkeypatch)
    entries = _entries(tmp_path, 100)
    parts: Generator[str, None, None] = entries_json_parts(entries, _inputs, fork=True)
    assert next(parts) == "["
    assert next(parts).startswith('{"interface": "fsl.BET"')
    parts.close()
    assert len(children) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)


def test_the_collector_is_back_after_a_command_in_a_test_s_process(
    make_entry: EntryMaker,
) -> None:
    make_entry("merged.nii")
    assert gc.isenabled()
    ok("ls", "--json")
    ok("clear", "--older-than", "30d", "--dry-run")
    assert gc.isenabled()  # a test's process runs on: it frees what the commands kept


def test_the_console_script_ends_with_the_collector_off(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the process ends without freeing what the command kept (`ends_unfreed`), turned
    on again the collector would walk the 100,000 entries once more, for nothing."""
    make_entry("merged.nii")
    monkeypatch.setattr(fast, "_CONSOLE", [True])
    monkeypatch.setattr(fast, "_KEPT", [])
    try:
        ok("stats")  # keeps nothing: the collector is back at its end
        assert gc.isenabled()
        ok("ls", "--json")
        assert not gc.isenabled()
    finally:
        gc.enable()
