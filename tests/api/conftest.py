"""What the Python face's tests share: two small volumes and a Memory on the test's own cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

MRCAT = "mrtrix3.MRCat"


@pytest.fixture
def pair(make_nifti: Callable[..., Path]) -> list[str]:
    """a.nii and b.nii, two different (4, 4, 3) volumes in the working folder."""
    return [str(make_nifti("a.nii", seed=1)), str(make_nifti("b.nii", seed=2))]
