#!/usr/bin/env bash
# The demo behind `make demo`: merge two real fMRI volumes in time with MRtrix3's mrcat
# (the job of `fslmerge -t`), twice. The first run executes mrcat; the second is a hit.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
demo=demo
rm -rf "$demo"
echo "== inputs: the two volumes of nibabel's example4d.nii.gz, split apart"
"$bin/python" examples/demo_data.py "$demo/data"

run() {
  "$bin/imcache" --base-dir "$demo" run mrtrix3.MRCat --axis 3 \
    --in-files "$demo/data/vol0.nii.gz" "$demo/data/vol1.nii.gz" --out-file merged.nii.gz "$@"
}

echo
echo "== first run: a miss, mrcat runs"
time run
echo
echo "== second run: a hit, nothing runs"
time run
echo
echo "== in a script: the merged image's path alone on stdout"
merged=$(run --get out_file 2>/dev/null)
echo "merged=$merged"
"$bin/python" -c "import nibabel, sys; print('shape of the merged image:', nibabel.load(sys.argv[1]).shape)" "$merged"
echo
echo "== the cache: $demo/imcache_mem"
find "$demo/imcache_mem" -maxdepth 3 | sort
