"""Speed against peers measured in the same run (issue 5): hit latency and its flatness in the
input size, cold hashing against `xxhsum -H2`, miss overhead against the tool alone,
nipype.caching's MRCat against `imcache run mrtrix3.MRCat`, and the hit of an interface resolved
from nipype against the built-in MRCat's (issue 15).

Every figure is a whole process, median of repeated runs. Data lives in bench/.data/speed (two
1 GiB files of random bytes are made once and kept). The page cache is warmed before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench import DATA, REPO, Figure, imcache_command, timed

SPEED = DATA / "speed"
CATALOGUE = REPO / "bench" / "catalogue"
GIB = 1 << 30
MIB = 1 << 20
PYTHON = str(REPO / ".venv" / "bin" / "python")

NIPYPE_RUN = """
import sys
from nipype.caching import Memory
from nipype.interfaces.mrtrix3 import MRCat
import os
os.makedirs(sys.argv[1], exist_ok=True)
mem = Memory(sys.argv[1])
result = mem.cache(MRCat)(in_files=sys.argv[2:], axis=3, out_file="merged.nii")
print(result.outputs.out_file)
"""

# The click app, as the console script ran it before cli/fast.py (and runs it on a handover).
CLICK_APP = "import sys; from imcache.cli.main import main; sys.argv[0] = 'imcache'; main()"

# An in-process hit: the Python face's PipeFunc called again and again in one process (the
# memo warm, the definition loaded once); prints the median seconds of one call.
API_HITS = """
import statistics, sys, time
from imcache import PipeFunc
base, catalogue, repeat, *files = sys.argv[1:]
size = PipeFunc("bench.Size", base, interfaces=[catalogue])
assert size(in_files=files).cached
seconds = []
for _ in range(int(repeat)):
    start = time.perf_counter()
    size(in_files=files)
    seconds.append(time.perf_counter() - start)
print(statistics.median(seconds))
"""


def add_arguments(parser: argparse._ArgumentGroup) -> None:
    parser.add_argument("--repeat", type=int, default=11, help="runs per median")


def run(args: argparse.Namespace) -> list[Figure]:
    big = [_random_file(SPEED / f"big{i}.bin", GIB) for i in (1, 2)]
    small = [_random_file(SPEED / f"small{i}.bin", MIB) for i in (1, 2)]
    _settle(big + small)
    work = Path(tempfile.mkdtemp(prefix="speed-", dir=DATA))
    try:
        return [
            *_hit(work, big, small, args.repeat),
            *_cold_hashing(work, big, args.repeat),
            *_miss_overhead(work, small, args.repeat),
            *_against_nipype(work, args.repeat),
            *_nipype_resolved(work, args.repeat),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _random_file(path: Path, size: int) -> Path:
    if not path.exists() or path.stat().st_size != size:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            for _ in range(size // (64 * MIB) or 1):
                handle.write(os.urandom(min(size, 64 * MIB)))
    return path


def _settle(paths: list[Path]) -> None:
    """The memo takes only files older than its racy window (2 s): wait that out once."""
    newest = max(max(p.stat().st_mtime, p.stat().st_ctime) for p in paths)
    time.sleep(max(0.0, newest + 2.5 - time.time()))


def _size_run(base: Path, files: list[Path], *extra: str) -> list[str]:
    return [
        imcache_command(),
        "--base-dir",
        str(base),
        "--interfaces",
        str(CATALOGUE),
        "run",
        "bench.Size",
        "--in-files",
        *map(str, files),
        *extra,
    ]


def _hit(work: Path, big: list[Path], small: list[Path], repeat: int) -> list[Figure]:
    base = work / "hits"
    for files in (big, small):
        timed(_size_run(base, files))  # a miss, filling the memo
        _, done = timed(_size_run(base, files, "--json"))
        assert json.loads(done.stdout)["cached"], done.stderr
    names = ("big", "small", "click", "xxhash", "tab", "tab_click")
    runs: dict[str, list[float]] = {name: [] for name in names}
    commands = {
        "big": _size_run(base, big),
        "small": _size_run(base, small),
        "click": [PYTHON, "-c", "import click, xxhash"],
        "xxhash": [PYTHON, "-c", "import xxhash"],
        "tab": [imcache_command()],
        "tab_click": [PYTHON, "-c", CLICK_APP],  # the same Tab, answered by the click app
    }
    # Completing an interface's inputs, as bash asks (issue 17 item 2).
    complete = {**os.environ, "_IMCACHE_COMPLETE": "bash_complete", "COMP_CWORD": "3"}
    complete["COMP_WORDS"] = "imcache run fsl.Merge --in"
    for _ in range(repeat):  # interleaved: a slow moment of the machine slows every column
        for name, argv in commands.items():
            runs[name].append(timed(argv, env=complete if name.startswith("tab") else None)[0])
    hit_big, hit_small, click_peer, xxhash_peer, tab, tab_click = (_median(runs[n]) for n in names)
    api = [PYTHON, "-c", API_HITS, str(base), str(CATALOGUE), str(repeat * 10), *map(str, big)]
    api_hit = float(timed(api)[1].stdout)
    return [
        Figure(
            "API hit, 2 x 1 GiB inputs, memo warm / CLI hit",
            api_hit / hit_big,
            0.10,
            "x",
            f"{api_hit * 1000:.2f} ms",
            f"{hit_big * 1000:.1f} ms (CLI hit)",
        ),
        Figure(
            "hit, two 1 GiB inputs / python -c 'import click, xxhash'",
            hit_big / click_peer,
            1.0,
            "x",
            f"{hit_big * 1000:.1f} ms",
            f"{click_peer * 1000:.1f} ms",
        ),
        Figure(
            "hit, two 1 GiB inputs / python -c 'import xxhash'",
            hit_big / xxhash_peer,
            2.5,
            "x",
            f"{hit_big * 1000:.1f} ms",
            f"{xxhash_peer * 1000:.1f} ms",
        ),
        Figure(
            "hit flatness: two 1 GiB / two 1 MiB inputs",
            hit_big / hit_small,
            1.10,
            "x",
            f"{hit_big * 1000:.1f} ms",
            f"{hit_small * 1000:.1f} ms (1 MiB)",
        ),
        Figure(
            "completion: imcache run fsl.Merge --in<Tab> / the hit",
            tab / hit_big,
            1.5,
            "x",
            f"{tab * 1000:.1f} ms",
            f"{hit_big * 1000:.1f} ms (hit)",
        ),
        Figure(
            "the same completion through the click app (what a Tab cost before) / the hit",
            tab_click / hit_big,
            None,
            "x",
            f"{tab_click * 1000:.1f} ms",
            f"{hit_big * 1000:.1f} ms (hit)",
        ),
    ]


def _cold_hashing(work: Path, big: list[Path], repeat: int) -> list[Figure]:
    """imcache computing the key of two page-cached 1 GiB files with an empty memo (a fresh
    base each time, `--dry-run`: nothing runs), against xxhsum -H2 on the same files."""
    xxhsum = shutil.which("xxhsum")
    if xxhsum is None:
        raise SystemExit("xxhsum is missing: `make bench` installs it (Debian package xxhash)")
    timed([xxhsum, "-H2", *map(str, big)])  # warm the page cache
    seconds = []
    for n in range(max(3, repeat // 2)):
        seconds.append(timed(_size_run(work / f"cold{n}", big, "--dry-run"))[0])
    ours = sorted(seconds)[len(seconds) // 2]
    theirs = timed([xxhsum, "-H2", *map(str, big)], max(3, repeat // 2))[0]
    gb = 2 * GIB / 1e9
    return [
        Figure(
            "cold hashing throughput: xxhsum -H2 time / imcache time (2 x 1 GiB)",
            ours / theirs,
            1 / 1.5,
            "x (time ratio)",
            f"{gb / ours:.1f} GB/s",
            f"{gb / theirs:.1f} GB/s",
        )
    ]


def _miss_overhead(work: Path, small: list[Path], repeat: int) -> list[Figure]:
    """A miss is a key the cache has not seen: each timed run gets its own two 1 MiB inputs.

    (Rerunning the same inputs with `--force` would also time deleting the old entry; that is
    shown on its own row.)
    """
    base = work / "misses"
    timed(_size_run(base, small))  # the cache root exists, as for any miss but the first
    fresh = [_fresh_pair(work / f"miss{n}") for n in range(repeat)]
    runs: dict[str, list[float]] = {"miss": [], "tool": [], "start": [], "hit": []}
    for pair in fresh:  # interleaved, so that a slow moment of the machine hits every column
        runs["miss"].append(timed(_size_run(base, pair))[0])
        runs["tool"].append(timed(["wc", "-c", *map(str, pair)])[0])
        runs["start"].append(timed([PYTHON, "-c", "import click, xxhash"])[0])
        runs["hit"].append(timed(_size_run(base, pair))[0])
    miss, tool, start, hit = (_median(runs[name]) for name in ("miss", "tool", "start", "hit"))
    forced = timed(_size_run(base, small, "--force"), repeat)[0]
    return [
        Figure(
            "imcache's own part of a miss: miss - tool - python -c 'import click, xxhash'",
            miss - tool - start,
            None,
            "s",
            f"{(miss - tool) * 1000:.1f} ms",
            f"{start * 1000:.1f} ms (start)",
        ),
        Figure(
            "miss overhead: miss - the tool alone (wc -c, two new 1 MiB inputs)",
            miss - tool,
            0.050,
            "s",
            f"{miss * 1000:.1f} ms",
            f"{tool * 1000:.1f} ms",
        ),
        Figure(
            "miss - hit: what running adds to a hit's cost",
            miss - hit,
            None,
            "s",
            f"{miss * 1000:.1f} ms",
            f"{hit * 1000:.1f} ms (hit)",
        ),
        Figure(
            "rerun with --force (deletes the old entry) - the tool alone",
            forced - tool,
            None,
            "s",
            f"{forced * 1000:.1f} ms",
            f"{tool * 1000:.1f} ms",
        ),
    ]


def _fresh_pair(folder: Path) -> list[Path]:
    """Two 1 MiB files no run has seen (new content, so a new key)."""
    folder.mkdir()
    pair = [folder / "a.bin", folder / "b.bin"]
    for path in pair:
        path.write_bytes(os.urandom(MIB))
    return pair


def _against_nipype(work: Path, repeat: int) -> list[Figure]:
    """The same real job, `mrcat -axis 3` on the same two NIfTI files."""
    import nibabel as nib
    import numpy as np

    inputs = []
    for seed in (1, 2):
        path = work / f"vol{seed}.nii"
        data = np.random.default_rng(seed).random((64, 64, 32), dtype=np.float32)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
        inputs.append(str(path))
    script = work / "nipype_mrcat.py"
    script.write_text(NIPYPE_RUN)

    def nipype(base: Path) -> list[str]:
        return [PYTHON, str(script), str(base), *inputs]

    def ours(base: Path) -> list[str]:
        cli = [imcache_command(), "--base-dir", str(base), "run", "mrtrix3.MRCat"]
        return [*cli, "--axis", "3", "--out-file", "merged.nii", "--in-files", *inputs]

    runs = max(3, repeat // 3)
    miss_nipype = _median([timed(nipype(work / f"np{n}"), cwd=work)[0] for n in range(runs)])
    miss_ours = _median([timed(ours(work / f"im{n}"), cwd=work)[0] for n in range(runs)])
    hit_nipype = timed(nipype(work / "np0"), repeat, cwd=work)[0]
    hit_ours = timed(ours(work / "im0"), repeat, cwd=work)[0]
    return [
        Figure(
            "hit: imcache run mrtrix3.MRCat / nipype.caching Memory.cache(MRCat)",
            hit_ours / hit_nipype,
            0.1,
            "x",
            f"{hit_ours * 1000:.0f} ms",
            f"{hit_nipype * 1000:.0f} ms",
        ),
        Figure(
            "miss: imcache / nipype.caching (same mrcat job)",
            miss_ours / miss_nipype,
            None,
            "x",
            f"{miss_ours * 1000:.0f} ms",
            f"{miss_nipype * 1000:.0f} ms",
        ),
    ]


def _nipype_resolved(work: Path, repeat: int) -> list[Figure]:
    """The hit of an interface resolved from nipype (issue 15: it never imports nipype) against
    the built-in mrtrix3.MRCat's hit on the same volumes, and what a miss pays for nipype."""
    inputs = [str(work / f"vol{seed}.nii") for seed in (1, 2)]  # made by _against_nipype
    base = work / "resolved"

    def builtin() -> list[str]:
        cli = [imcache_command(), "--base-dir", str(base), "run", "mrtrix3.MRCat"]
        return [*cli, "--axis", "3", "--out-file", "merged.nii", "--in-files", *inputs]

    def resolved(folder: Path = base) -> list[str]:
        cli = [imcache_command(), "--base-dir", str(folder), "run", "mrtrix3.MRDeGibbs"]
        return [*cli, "--in-file", inputs[0], "--out-file", "unringed.nii"]

    for argv in (builtin(), resolved()):
        timed(argv, cwd=work)  # the misses (and nipype's description, derived once)
    hit_resolved = timed(resolved(), repeat, cwd=work)[0]
    hit_builtin = timed(builtin(), repeat, cwd=work)[0]
    runs = max(3, repeat // 3)
    miss = _median([timed(resolved(work / f"rm{n}"), cwd=work)[0] for n in range(runs)])
    imports = timed([PYTHON, "-c", "import nipype.interfaces.mrtrix3"], runs)[0]
    return [
        Figure(
            "hit: nipype-resolved mrtrix3.MRDeGibbs / built-in mrtrix3.MRCat (same volumes)",
            hit_resolved / hit_builtin,
            1.2,
            "x",
            f"{hit_resolved * 1000:.0f} ms",
            f"{hit_builtin * 1000:.0f} ms",
        ),
        Figure(
            "miss of mrtrix3.MRDeGibbs; of it, python -c 'import nipype.interfaces.mrtrix3'",
            miss,
            None,
            "s",
            f"{miss * 1000:.0f} ms",
            f"{imports * 1000:.0f} ms",
        ),
    ]


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]
