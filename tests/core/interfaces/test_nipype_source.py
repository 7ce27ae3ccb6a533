"""nipype as the last source on the search path (core/interfaces/nipype_source.py): resolution,
the description kept per nipype version, checks with imcache's conventions, keys, --help, a hit
that never imports nipype, the listing and completion, and Memory.cache(cls)'s name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imcache.core.interfaces.nipype_source import (
    installed_version,
    nipype_interface,
    resolve_nipype_class,
)
from tests.conftest import REPO, imcache, run_json, run_ok

nipype = pytest.importorskip("nipype")


def _descriptions(home: Path) -> Path:
    return home / ".cache" / "imcache" / "nipype" / nipype.__version__


@pytest.fixture
def home(isolated: Path) -> Path:
    return Path(os.environ["HOME"])


def test_version_is_read_without_importing_nipype() -> None:
    code = (
        "import sys; from imcache.core.interfaces.nipype_source import installed_version; "
        "print(installed_version(), 'nipype' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert shown.split() == [nipype.__version__, "False"]
    assert installed_version() == nipype.__version__


def test_a_nipype_name_resolves_and_its_description_is_kept_per_version(
    make_nifti: Callable[..., Path], home: Path
) -> None:
    image = make_nifti("dwi.nii.gz")
    report = run_json("run", "mrtrix3.DWIDenoise", "--in-file", str(image), "--dry-run")

    kept = _descriptions(home) / "mrtrix3" / "DWIDenoise.json"
    description = json.loads(kept.read_text())
    assert description["class"] == "nipype.interfaces.mrtrix3.preprocess.DWIDenoise"
    assert description["nipype"] == nipype.__version__
    assert report["argv"][0] == "dwidenoise"


def test_listing_shows_nipypes_source_unless_a_definition_holds_the_name() -> None:
    rows = json.loads(run_ok("interfaces", "fsl.BET", "--json").stdout)
    assert [row["catalogue"].startswith("nipype ") for row in rows if row["name"] == "fsl.BET"] == [
        False
    ]  # the built-in definition is the one used; nipype's of the same name is not listed
    rows = json.loads(run_ok("interfaces", "afni.Despike", "--json").stdout)
    assert [row["catalogue"] for row in rows] == [f"nipype {nipype.__version__}"]
    text = run_ok("interfaces", "afni.Despike").stdout
    assert f"nipype {nipype.__version__}: nipype.interfaces.afni.Despike" in text
    assert "3dDespike [not on PATH]" in text


def test_own_folder_shadows_nipype(tmp_path: Path, make_nifti: Callable[..., Path]) -> None:
    mine = tmp_path / "mine" / "mrtrix3"
    mine.mkdir(parents=True)
    builtin = REPO / "src/imcache/core/interfaces/catalogue/mrtrix3/MRCat.json"
    (mine / "DWIDenoise.json").write_text(builtin.read_text())
    image = make_nifti("a.nii.gz")
    report = run_json(
        "--interfaces",
        str(tmp_path / "mine"),
        "run",
        "mrtrix3.DWIDenoise",
        "--in-files",
        str(image),
        "--dry-run",
    )
    assert report["argv"][0] == "mrcat"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "ants.AffineInitializer: --fixed-image is required"),
        (["--radian-fraction", "2"], "--radian-fraction must be <= 1, not '2'"),
        (["--dimension", "4"], "--dimension '4' is not one of [3, 2]"),
        (["--fixed-image", "missing.nii.gz"], "--fixed-image 'missing.nii.gz': no such file"),
    ],
)
def test_nipypes_spec_is_checked_with_one_line_and_exit_2(
    words: list[str], message: str, make_nifti: Callable[..., Path]
) -> None:
    make_nifti("f.nii.gz")
    make_nifti("m.nii.gz", seed=1)
    given = {"--fixed-image": "f.nii.gz", "--moving-image": "m.nii.gz"}
    for option in list(given):
        if option in words or not words:
            given.pop(option)
    flat = [w for pair in given.items() for w in pair]
    result = imcache("run", "ants.AffineInitializer", *flat, *words)

    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_xor_is_checked_before_anything_runs(
    make_nifti: Callable[..., Path], tmp_path: Path
) -> None:
    image = make_nifti("dwi.nii.gz")
    grad = tmp_path / "grad.b"
    grad.write_text("0 0 1 0\n")
    result = imcache(
        "run",
        "mrtrix3.DWIDenoise",
        *("--in-file", str(image), "--grad-file", str(grad)),
        *("--grad-fsl", str(grad), str(grad)),
    )
    assert result.exit_code == 2
    assert "--grad-file cannot be used with --grad-fsl" in result.stderr


def test_key_holds_nipypes_version_class_and_spec(
    make_nifti: Callable[..., Path], home: Path
) -> None:
    """Another nipype (here: its description edited as an upgrade would) never hits."""
    image = make_nifti("dwi.nii.gz")
    words = ("run", "mrtrix3.DWIDenoise", "--in-file", str(image), "--dry-run")
    before = run_json(*words)
    kept = _descriptions(home) / "mrtrix3" / "DWIDenoise.json"
    description = json.loads(kept.read_text())
    description["nipype"] = "99.0.0"
    kept.write_text(json.dumps(description))
    after = run_json(*words)

    assert before["key"] != after["key"]
    with_args = run_json(*words, "--args", "-extent 3,3,3")
    assert with_args["key"] != after["key"]
    at = with_args["argv"].index("-extent")  # placed where nipype places them
    assert with_args["argv"][at + 1] == "3,3,3"


def test_help_shows_nipypes_own_descriptions() -> None:
    from nipype.interfaces import fsl

    shown = run_ok("run", "fsl.ImageMeants", "--help").stdout
    wanted = " ".join(fsl.ImageMeants().inputs.trait("eig").desc.split())
    assert wanted[:40] in " ".join(shown.split())
    assert "--output-type {NIFTI,NIFTI_PAIR,NIFTI_GZ,NIFTI_PAIR_GZ,GIFTI}" in shown
    assert "FSLOUTPUTTYPE" in shown


def test_a_hit_never_imports_nipype(make_nifti: Callable[..., Path], tmp_path: Path) -> None:
    image = make_nifti("dwi.nii.gz", shape=(4, 4, 3, 5))
    command = [
        *(sys.executable, "-X", "importtime", "-m", "imcache"),
        *("run", "mrtrix3.DWIDenoise", "--in-file", str(image)),
    ]
    miss = subprocess.run(command, capture_output=True, text=True)
    hit = subprocess.run(command, capture_output=True, text=True)

    assert miss.returncode == hit.returncode == 0, miss.stderr[-2000:]
    assert " nipype" in miss.stderr  # the miss asked nipype for the command line
    assert "collecting precomputed outputs" in hit.stderr
    imported = [line for line in hit.stderr.splitlines() if line.startswith("import time:")]
    assert imported and not [line for line in imported if " nipype" in line or "traits" in line]


def test_unknown_nipype_name_is_unknown() -> None:
    result = imcache("run", "mrtrix3.NoSuchThing", "--help")
    assert result.exit_code == 2
    assert "unknown interface 'mrtrix3.NoSuchThing'" in result.stderr


def test_memory_cache_of_a_class_names_the_same_interface() -> None:
    from nipype.interfaces import fsl, mrtrix3

    assert resolve_nipype_class(fsl.Merge) == "fsl.Merge"
    assert resolve_nipype_class(mrtrix3.DWIDenoise) == "mrtrix3.DWIDenoise"
    with pytest.raises(Exception, match="not a public command-line interface"):
        resolve_nipype_class(fsl.FSLCommand)
    interface = nipype_interface("mrtrix3.DWIDenoise")
    assert interface is not None and interface.extension.nipype_class.endswith("DWIDenoise")


def test_completion_offers_nipype_names() -> None:
    env = {
        **os.environ,
        "_IMCACHE_COMPLETE": "bash_complete",
        "COMP_WORDS": "imcache run afni.Desp",
    }
    env["COMP_CWORD"] = "2"
    shown = subprocess.run(
        [sys.executable, "-m", "imcache"], capture_output=True, text=True, env=env
    ).stdout
    assert "afni.Despike" in shown


def test_a_fast_hit_on_a_nipype_name_imports_what_a_built_in_hit_does(
    make_nifti: Callable[..., Path], tmp_path: Path
) -> None:
    """Issue 17: the hit of a nipype-resolved name is served without click, and without typing,
    json or re either (finding nipype's version once imported re: 1.48x the built-in hit)."""
    from tests.cli.test_main import HIT_PROBE

    image = make_nifti("dwi.nii.gz", shape=(4, 4, 3, 5))
    time.sleep(2.2)  # older than the memo's racy window (ctime too): its digest is kept
    words = ["run", "mrtrix3.DWIDenoise", "--in-file", str(image)]
    for _ in range(2):  # a miss, then a hit by the full command, which fills the memo
        done = subprocess.run([sys.executable, "-m", "imcache", *words], capture_output=True)
        assert done.returncode == 0, done.stderr
    hit = subprocess.run(
        [sys.executable, "-c", HIT_PROBE, *words], capture_output=True, text=True, check=False
    )
    code, imported = hit.stdout.splitlines()[-1].split(" ")
    assert code == "0", hit.stderr  # served by the fast path: a hit
    assert imported.strip() == "", f"imported on a hit: {imported.strip()}"


@given(st.text(alphabet="nipype-0123456789.abc_+dist-info\u0661", max_size=30))
def test_the_dist_folder_s_version_is_read_as_its_pattern_reads_it(tail: str) -> None:
    import re

    from imcache.core.layout import nipype_dist_version

    for name in (tail, f"nipype-{tail}", f"nipype-{tail}.dist-info"):
        match = re.fullmatch(r"nipype-([0-9][^-]*)\.dist-info", name, flags=re.ASCII)
        assert nipype_dist_version(name) == (match.group(1) if match else None), name
