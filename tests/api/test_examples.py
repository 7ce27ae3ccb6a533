"""examples/python_memory.py, run as a user runs it: the issue's snippet for real (mrtrix3's
MRCat and MRMath), a loop over subjects; the second run is all hits, the CLI hits its entries
and the Python face hits the CLI's."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from imcache.api import Memory
from tests.cli.test_examples import EXAMPLES, Calls, demo_volumes, ok, tools  # noqa: F401

SCRIPT = EXAMPLES / "python_memory.py"


def test_python_example_runs_then_hits_and_shares_the_clis_cache(
    tools: Calls,  # noqa: F811
    isolated: Path,
) -> None:
    first, second = isolated / "sub-01", isolated / "sub-02"
    volumes = demo_volumes(first)
    second.mkdir()
    shutil.copy(volumes[1], second / "vol0.nii.gz")  # another subject: other data, other keys
    shutil.copy(volumes[0], second / "vol1.nii.gz")

    ran = ok(sys.executable, SCRIPT, first, second)
    assert tools() == {"mrcat": 2, "mrmath": 2}
    assert ran.stdout.count("ran (") == 4 and "cached" not in ran.stdout
    again = ok(sys.executable, SCRIPT, first, second)
    assert tools() == {"mrcat": 2, "mrmath": 2}  # nothing ran
    assert again.stdout.count("cached (") == 4

    # The CLI hits the Python run's entry ...
    cli = ok(
        sys.executable, "-m", "imcache", "run", "mrtrix3.MRCat", "--axis", "3",
        "--out-file", "merged.nii.gz", "--in-files", *sorted(first.glob("*.nii.gz")), "--json",
    )  # fmt: skip
    assert json.loads(cli.stdout)["cached"] is True and tools()["mrcat"] == 2
    # ... and the Python face hits a CLI run's.
    ok(sys.executable, "-m", "imcache", "run", "mrtrix3.MRCat", "--in-files", *volumes)
    assert tools()["mrcat"] == 3
    res = Memory().cache("mrtrix3.MRCat")(in_files=volumes)
    assert res.cached and tools()["mrcat"] == 3


def test_python_example_clears_what_its_run_did_not_use(
    tools: Calls,  # noqa: F811
    isolated: Path,
) -> None:
    first = isolated / "sub-01"
    volumes = demo_volumes(first)
    ok(sys.executable, SCRIPT, first)
    shutil.copy(volumes[0], first / "vol2.nii.gz")  # the next run merges three: other keys
    done = ok(sys.executable, SCRIPT, first)
    assert done.stdout.count("cleared ") == 2  # the first run's merge and mean
    listed = subprocess.run(
        [sys.executable, "-m", "imcache", "ls"], capture_output=True, text=True, check=True
    )
    assert len(listed.stdout.splitlines()) == 2
