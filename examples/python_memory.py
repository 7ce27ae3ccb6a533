"""nipype.caching's example, with imcache: plain Python, a loop over subjects, glob, functions.

Each subject folder holds 3D volumes (*.nii.gz); they are merged in time (mrcat) and averaged
(mrmath). Run it twice: the second time nothing runs, every call is a hit, and the CLI's
`imcache run` hits the same entries (one cache, two faces). At the end, what this run did not use
(an earlier run's different parameters, say) is cleared, as nipype's `clear_previous_runs` meant.

    python examples/python_memory.py SUBJECT_FOLDER [SUBJECT_FOLDER ...]
    (try: python examples/demo_data.py sub-01 && python examples/python_memory.py sub-01)

The cache lives in $IMCACHE_BASE_DIR/imcache_mem (default: the current folder).
"""

from __future__ import annotations

import glob
import os
import sys

from imcache import Memory, PipeFunc, ToolFailedError


def mean_image(merge: PipeFunc, average: PipeFunc, volumes: list[str]) -> str:
    """Merge the volumes in time, then take their temporal mean: a function like any other."""
    merged = merge(in_files=volumes, axis=3, out_file="merged.nii.gz")
    mean = average(
        in_file=merged.outputs.out_file, operation="mean", axis=3, out_file="mean.nii.gz"
    )
    print(f"  merge: {'cached' if merged.cached else 'ran'} ({merged.key[:12]})")
    print(f"  mean:  {'cached' if mean.cached else 'ran'} ({mean.key[:12]})")
    return str(mean.outputs.out_file)


def main(subjects: list[str]) -> int:
    if not subjects:
        print(__doc__, file=sys.stderr)
        return 2
    mem = Memory()  # starts a session: what this run does not use, clear_previous_runs removes
    merge = mem.cache("mrtrix3.MRCat")
    average = mem.cache("mrtrix3.MRMath")
    for subject in subjects:
        volumes = sorted(glob.glob(os.path.join(subject, "*.nii.gz")))
        print(f"{subject}: {len(volumes)} volumes")
        try:
            print(f"  -> {mean_image(merge, average, volumes)}")
        except ToolFailedError as error:  # the tool's exit code, its last words, its folder
            print(f"  failed ({error.tool_exit_code}): {error.stderr_tail}", file=sys.stderr)
            print(f"  see {error.kept_dir}", file=sys.stderr)
            return 1
    for entry in mem.clear_previous_runs(warn=False):
        print(f"cleared {entry.interface} {entry.key[:12]} (not used by this run)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
