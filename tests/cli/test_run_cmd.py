"""`imcache run`'s face (cli/run_cmd.py): what a dry run says it would do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.conftest import run_json, run_ok
from tests.core.test_run import concat_args


def test_force_dry_run_says_it_would_run(
    counting_mrcat: Callable[[], int], make_nifti: Callable[..., Path]
) -> None:
    """Issue 13 item 10: --force runs even a cached key, and its dry run must say so."""
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    args = concat_args("a.nii", "b.nii")
    run_ok(*args)
    assert "hit (nothing to run)" in run_ok(*args, "--dry-run").stdout
    forced = run_ok(*args, "--force", "--dry-run").stdout
    assert "would:     run (--force; cached now)" in forced
    assert "nothing to run" not in forced
    report = run_json(*args, "--force", "--dry-run")
    assert report["would_run"] is True and report["cached"] is True
    assert run_json(*args, "--dry-run")["would_run"] is False
    assert counting_mrcat() == 1, "a dry run runs nothing"
