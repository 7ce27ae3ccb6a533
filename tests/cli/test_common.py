"""cli/common.py: count() keeps a number and its noun in agreement (verify, session, stats)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import run_ok
from tests.core.test_run import concat_args


def test_one_entry_is_one_entry_not_1_entries(
    counting_mrcat: Callable[[], int], make_nifti: Callable[..., Path]
) -> None:
    """Issue 13 item 10: "1 entries" read wrong; other counts keep their plural."""
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    run_ok(*concat_args("a.nii", "b.nii"))
    assert "checked 1 entry (" in run_ok("verify").stderr
    run_ok("session", "start")
    session = run_ok("session", "status").stdout
    assert "used since: 0 entries" in session and "not used since: 1 entry," in session
    stats = run_ok("stats").stdout
    assert ": 1 entry, " in stats and " 0 hits, 1 miss" in stats
    cleared = run_ok("clear", "--all").stderr
    assert " in 1 entry; 0 kept" in cleared
    assert "entries" not in cleared.split("freed")[-1]
