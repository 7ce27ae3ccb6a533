"""Make the demo's inputs from a real scan that nibabel ships: its two fMRI volumes, split apart.

Usage: python examples/demo_data.py OUT_DIR   (writes vol0.nii.gz and vol1.nii.gz)
"""

from __future__ import annotations

import os
import sys

import nibabel as nib
from nibabel.testing import data_path


def main(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    series = nib.load(os.path.join(data_path, "example4d.nii.gz"))
    for index in range(series.shape[3]):
        volume = series.slicer[..., index]
        nib.save(volume, os.path.join(out_dir, f"vol{index}.nii.gz"))
        print(f"  {out_dir}/vol{index}.nii.gz  {volume.shape}")


if __name__ == "__main__":
    main(sys.argv[1])
