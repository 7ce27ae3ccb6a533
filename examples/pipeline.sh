#!/usr/bin/env bash
# A pipeline as a shell script: merge fMRI volumes in time (mrcat), take their temporal mean
# (mrmath), store it as 16-bit integers (mrconvert). Each step's output path comes back on
# stdout with --get and feeds the next step. Run it twice: the second time every step is a hit
# and nothing runs.
#
#   examples/pipeline.sh VOLUME VOLUME [VOLUME ...]
#   (try: python examples/demo_data.py data && examples/pipeline.sh data/vol0.nii.gz data/vol1.nii.gz)
#
# The cache lives in $IMCACHE_BASE_DIR/imcache_mem (default: the current folder).
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 VOLUME VOLUME [VOLUME ...]   (3D NIfTI images to merge in time)" >&2
  exit 2
fi

# Entries this run does not use are what 'clear --previous' removes at the end.
imcache session start >&2

merged=$(imcache run mrtrix3.MRCat --axis 3 --in-files "$@" --out-file merged.nii.gz \
  --get out_file)
mean=$(imcache run mrtrix3.MRMath --in-file "$merged" --operation mean --axis 3 \
  --out-file mean.nii.gz --get out_file)
mean16=$(imcache run mrtrix3.MRConvert --in-file "$mean" --datatype int16 \
  --out-file mean_int16.nii.gz --get out_file)

echo "merged: $merged"
echo "mean: $mean"
echo "mean_int16: $mean16"

# Drop the entries of earlier runs that this one no longer produced (changed inputs, options).
imcache clear --previous >&2
