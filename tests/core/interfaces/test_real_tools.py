"""The built-in MRtrix3, Connectome Workbench and dcm2niix definitions, run for real.

Each test puts a wrapper first on PATH that counts its calls and then execs the real program, runs
the same job twice through `imcache run` and reads the facts from the counter: the first run is a
miss (the tool ran once), the second a hit (it did not run again, same key, same outputs). The
outputs are then read with nibabel (or parsed, for text) and checked against numpy.

The MRtrix3 and dcm2niix definitions also render nipype's command line for the same inputs (nipype
is the oracle for their input names), and `imcache run NAME --help` lists every input of each.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import struct
import sysconfig
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import imcache.core.interfaces
from imcache.core.plan import RunRequest, plan_run
from tests.conftest import first_on_path, require_tool, run_json, run_ok

nib = pytest.importorskip("nibabel")
np = pytest.importorskip("numpy")

CATALOGUE = Path(imcache.core.interfaces.__file__).parent / "catalogue"
NEW = [
    "mrtrix3.MRConvert",
    "mrtrix3.MRMath",
    "mrtrix3.MRStats",
    "mrtrix3.FitTensor",
    "workbench.VolumeMerge",
    "workbench.VolumeMath",
    "dcm2nii.Dcm2niix",
]
MakeNifti = Callable[..., Path]
Calls = Callable[[], int]
Counting = Callable[[str], Calls]


@pytest.fixture
def counting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Counting:
    """`counting("mrconvert")`: a wrapper first on PATH that counts calls, then runs the tool."""

    def wrap(name: str) -> Calls:
        real = require_tool(name)
        counter = tmp_path / f"{name}-calls"
        script = f'#!/bin/sh\necho x >> "{counter}"\nexec "{real}" "$@"\n'
        first_on_path(tmp_path / "bin", monkeypatch, {name: script})
        return lambda: len(counter.read_text().splitlines()) if counter.exists() else 0

    return wrap


def miss_then_hit(calls: Calls, *args: str) -> dict[str, Any]:
    """Run twice: the tool runs once, the second run is a hit with the same key and outputs."""
    before = calls()
    first = run_json("run", *args)
    assert first["cached"] is False
    assert calls() == before + 1, "a miss runs the tool once"
    second = run_json("run", *args)
    assert second["cached"] is True
    assert calls() == before + 1, "an identical second run must not run the tool"
    assert second["key"] == first["key"]
    assert second["outputs"] == first["outputs"]
    outputs: dict[str, Any] = first["outputs"]
    return outputs


def load(path: str) -> Any:
    """The image's data as float64."""
    return np.asanyarray(nib.load(path).dataobj, dtype=np.float64)


def data_of(path: Path) -> Any:
    return load(str(path))


# --- MRtrix3 ------------------------------------------------------------------------------------


def test_mrconvert_round_trip(counting: Counting, make_nifti: MakeNifti) -> None:
    calls = counting("mrconvert")
    source = make_nifti("a.nii", seed=1, shape=(4, 4, 3, 3))

    to_mif = miss_then_hit(
        calls, "mrtrix3.MRConvert", "--in-file", "a.nii", "--out-file", "a.mif", "--nthreads", "1"
    )
    mif = Path(to_mif["out_file"])
    assert mif.name == "a.mif"
    assert mif.read_bytes().startswith(b"mrtrix image"), "a .mif output is MRtrix's own format"

    back = miss_then_hit(
        calls,
        "mrtrix3.MRConvert",
        "--in-file",
        str(mif),
        "--out-file",
        "back.nii",
        "--datatype",
        "float64",
    )
    image = nib.load(back["out_file"])
    assert image.get_data_dtype() == np.float64
    np.testing.assert_array_equal(load(back["out_file"]), data_of(source))

    # One volume out of four dimensions: -coord 3 1 -axes 0,1,2 gives the 3D second volume; the
    # header key-values imported from one JSON file come out in the other.
    Path("meta.json").write_text('{"EchoTime": 0.03}')
    volume = miss_then_hit(
        calls,
        "mrtrix3.MRConvert",
        "--in-file",
        "a.nii",
        "--coord",
        "3",
        "1",
        "--axes",
        "0",
        "1",
        "2",
        "--out-file",
        "second.nii",
        "--json-import",
        "meta.json",
        "--json-export",
        "header.json",
    )
    assert nib.load(volume["out_file"]).shape == (4, 4, 3)
    np.testing.assert_array_equal(load(volume["out_file"]), data_of(source)[..., 1])
    assert json.loads(Path(volume["json_export"]).read_text())["EchoTime"] == pytest.approx(0.03)


def test_mrmath_mean_along_axis(counting: Counting, make_nifti: MakeNifti) -> None:
    calls = counting("mrmath")
    source = make_nifti("series.nii", seed=2, shape=(4, 4, 3, 5))

    outputs = miss_then_hit(
        calls,
        "mrtrix3.MRMath",
        "--in-file",
        "series.nii",
        "--operation",
        "mean",
        "--axis",
        "3",
        "--out-file",
        "mean.nii",
    )
    mean = load(outputs["out_file"])
    assert mean.shape == (4, 4, 3)
    np.testing.assert_allclose(mean, data_of(source).mean(axis=3), rtol=1e-6)

    # Several inputs and no axis: the statistic across the images, voxel by voxel.
    a, b = make_nifti("a.nii", seed=3), make_nifti("b.nii", seed=4)
    across = miss_then_hit(
        calls,
        "mrtrix3.MRMath",
        "--in-file",
        "a.nii",
        "b.nii",
        "--operation",
        "max",
        "--out-file",
        "max.nii",
    )
    np.testing.assert_array_equal(load(across["out_file"]), np.maximum(data_of(a), data_of(b)))


def test_mrstats_stdout_is_the_output(counting: Counting, make_nifti: MakeNifti) -> None:
    calls = counting("mrstats")
    source = make_nifti("series.nii", seed=5, shape=(4, 4, 3, 3))

    outputs = miss_then_hit(
        calls,
        "mrtrix3.MRStats",
        "--in-file",
        "series.nii",
        "--output",
        "mean",
        "min",
        "max",
    )
    stats = Path(outputs["stats"])
    assert stats.name == "stdout.txt"
    rows = [[float(word) for word in line.split()] for line in stats.read_text().splitlines()]
    data = data_of(source)
    expected = [[data[..., v].mean(), data[..., v].min(), data[..., v].max()] for v in range(3)]
    np.testing.assert_allclose(np.array(rows), np.array(expected), rtol=1e-5)


def synthetic_dwi(folder: Path) -> tuple[Path, Path, Any]:
    """A noise-free DWI of one known tensor in every voxel, its MRtrix gradient table, the tensor.

    Signal S = S0 exp(-b g'Dg): one b=0 volume and twelve b=1000 directions; the identity affine
    makes image axes scanner axes, the frame of the gradient table."""
    tensor = np.array([[1.7, 0.2, 0.1], [0.2, 0.9, -0.15], [0.1, -0.15, 0.5]]) * 1e-3
    directions = np.array(
        [
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
            [1, 1, 0],
            [1, 0, 1],
            [0, 1, 1],
            [1, -1, 0],
            [1, 0, -1],
            [0, 1, -1],
            [1, 1, 1],
            [1, -1, 1],
            [-1, 1, 1],
        ],
        dtype=float,
    )
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    gradients = np.vstack([[0.0, 0.0, 1.0], directions])
    bvalues = np.array([0.0] + [1000.0] * len(directions))
    signal = 1000.0 * np.exp(-bvalues * np.einsum("vi,ij,vj->v", gradients, tensor, gradients))
    data = np.broadcast_to(signal, (3, 3, 2, len(signal))).astype(np.float32)
    dwi = folder / "dwi.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(dwi))
    table = folder / "grad.b"
    table.write_text(
        "".join(
            f"{x:.10f} {y:.10f} {z:.10f} {b:g}\n"
            for (x, y, z), b in zip(gradients, bvalues, strict=True)
        )
    )
    return dwi, table, tensor


def test_dwi2tensor_recovers_the_tensor(counting: Counting, isolated: Path, tmp_path: Path) -> None:
    calls = counting("dwi2tensor")
    dwi, table, tensor = synthetic_dwi(isolated)

    outputs = miss_then_hit(
        calls,
        "mrtrix3.FitTensor",
        "--in-file",
        dwi.name,
        "--grad-file",
        table.name,
        "--out-file",
        "dt.nii",
        "--b0",
        "b0.nii",
        "--nthreads",
        "1",
    )
    fitted = load(outputs["out_file"])
    assert fitted.shape == (3, 3, 2, 6), "six tensor coefficients per voxel"
    order = [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]  # D11 D22 D33 D12 D13 D23
    expected = np.array([tensor[i, j] for i, j in order])
    np.testing.assert_allclose(fitted, np.broadcast_to(expected, fitted.shape), atol=1e-7)
    np.testing.assert_allclose(load(outputs["b0"]), 1000.0, rtol=1e-4)

    # The gradient table is an input: another table is another key, and dwi2tensor runs again.
    table.write_text(table.read_text().replace(" 1000", " 1001"))
    other = run_json("run", "mrtrix3.FitTensor", "--in-file", dwi.name, "--grad-file", table.name)
    assert other["cached"] is False
    assert calls() == 2


# --- Connectome Workbench -----------------------------------------------------------------------


def test_volume_merge_stacks_the_volumes(counting: Counting, make_nifti: MakeNifti) -> None:
    calls = counting("wb_command")
    a = make_nifti("a.nii", seed=6, shape=(4, 4, 3, 2))
    b = make_nifti("b.nii", seed=7, shape=(4, 4, 3))

    outputs = miss_then_hit(calls, "workbench.VolumeMerge", "--volume-in", "a.nii", "b.nii")
    merged = load(outputs["volume_out"])
    assert merged.shape == (4, 4, 3, 3)
    expected = np.concatenate([data_of(a), data_of(b)[..., None]], axis=3)
    np.testing.assert_allclose(merged, expected, rtol=1e-6)


def test_volume_merge_selects_subvolumes(counting: Counting, make_nifti: MakeNifti) -> None:
    """The full form, one JSON object per -volume: b's second subvolume, then a's 3..1."""
    calls = counting("wb_command")
    a = make_nifti("a.nii", seed=8, shape=(4, 4, 3, 3))
    b = make_nifti("b.nii", seed=9, shape=(4, 4, 3, 2))

    outputs = miss_then_hit(
        calls,
        "workbench.VolumeMerge",
        "--volume",
        '{"volume_in": "b.nii", "subvolume": "2"}',
        '{"volume_in": "a.nii", "subvolume": "1", "up_to": "3", "reverse": true}',
        "--volume-out",
        "picked.nii",
    )
    assert Path(outputs["volume_out"]).name == "picked.nii"
    expected = np.concatenate([data_of(b)[..., 1:2], data_of(a)[..., ::-1]], axis=3)
    np.testing.assert_allclose(load(outputs["volume_out"]), expected, rtol=1e-6)


def test_volume_math_evaluates_the_expression(counting: Counting, make_nifti: MakeNifti) -> None:
    calls = counting("wb_command")
    a = make_nifti("a.nii", seed=10, shape=(4, 4, 3, 2))
    b = make_nifti("b.nii", seed=11, shape=(4, 4, 3, 2))

    outputs = miss_then_hit(
        calls,
        "workbench.VolumeMath",
        "--expression",
        "2 * x - y",
        "--var",
        '{"name": "x", "volume": "a.nii"}',
        '{"name": "y", "volume": "b.nii"}',
    )
    result = load(outputs["volume_out"])
    assert result.shape == (4, 4, 3, 2)
    np.testing.assert_allclose(result, 2 * data_of(a) - data_of(b), rtol=1e-5, atol=1e-6)


# --- dcm2niix -----------------------------------------------------------------------------------

DICOM_DATA = Path(nib.__file__).parent / "tests" / "data"
IMPLICIT_LITTLE_ENDIAN = b"1.2.840.10008.1.2\x00"


def dicom_elements(path: Path) -> dict[tuple[int, int], bytes]:
    """The top-level elements of a DICOM file in implicit VR little endian, as nibabel's 0.dcm.

    Just enough of DICOM to read the facts the test compares (pydicom is not installed): the
    file meta group is explicit VR, the data set implicit; sequences are skipped."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM"
    position = 132
    meta: dict[tuple[int, int], bytes] = {}
    while struct.unpack_from("<H", data, position)[0] == 0x0002:
        element = struct.unpack_from("<H", data, position + 2)[0]
        if data[position + 4 : position + 6] in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
            length, start = struct.unpack_from("<I", data, position + 8)[0], position + 12
        else:
            length, start = struct.unpack_from("<H", data, position + 6)[0], position + 8
        meta[(2, element)] = data[start : start + length]
        position = start + length
    assert meta[(2, 0x10)] == IMPLICIT_LITTLE_ENDIAN, "this reader knows one transfer syntax"
    found: dict[tuple[int, int], bytes] = {}
    _read_implicit(data, position, len(data), found)
    return found


def _read_implicit(data: bytes, position: int, end: int, found: dict[Any, bytes] | None) -> int:
    undefined = 0xFFFFFFFF
    while position < end:
        group, element, length = struct.unpack_from("<HHI", data, position)
        position += 8
        if group == 0xFFFE and element in (0xE00D, 0xE0DD):  # end of an item or a sequence
            return position
        if length == undefined:  # a sequence of undefined length: skip its items
            while True:
                group, element, item_length = struct.unpack_from("<HHI", data, position)
                position += 8
                if (group, element) == (0xFFFE, 0xE0DD):
                    break
                item_end = len(data) if item_length == undefined else position + item_length
                position = _read_implicit(data, position, item_end, None)
            continue
        if found is not None:
            found[(group, element)] = data[position : position + length]
        position += length
    return position


def text(value: bytes) -> str:
    return value.decode("ascii").strip("\x00 ")


@pytest.fixture
def dcm2niix_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dcm2niix wheel's binary is in the venv's scripts folder, maybe not on PATH."""
    scripts = sysconfig.get_path("scripts")
    monkeypatch.setenv("PATH", f"{scripts}{os.pathsep}{os.environ['PATH']}")


def test_dcm2niix_converts_the_dicom_series(
    dcm2niix_on_path: None, counting: Counting, isolated: Path
) -> None:
    calls = counting("dcm2niix")
    series = isolated / "series"
    series.mkdir()
    names = ["0.dcm", "1.dcm"]
    for name in names:
        (series / name).write_bytes((DICOM_DATA / name).read_bytes())

    outputs = miss_then_hit(
        calls, "dcm2nii.Dcm2niix", "--source-dir", "series", "--out-filename", "%p_%s"
    )
    headers = [dicom_elements(series / name) for name in names]
    first = headers[0]
    protocol, series_number = text(first[(0x0018, 0x1030)]), text(first[(0x0020, 0x0011)])

    [converted] = outputs["converted_files"]
    assert Path(converted).name == f"{protocol}_{series_number}.nii.gz"
    # A Siemens mosaic: NumberOfImagesInMosaic tiles of rows / ceil(sqrt(n)) pixels; one volume
    # per file.
    mosaic = struct.unpack("<H", first[(0x0019, 0x100A)])[0]
    rows, columns = (struct.unpack("<H", first[(0x0028, e)])[0] for e in (0x0010, 0x0011))
    across = math.ceil(math.sqrt(mosaic))
    image = nib.load(converted)
    assert image.shape == (rows // across, columns // across, mosaic, len(names))
    spacing = [float(v) for v in text(first[(0x0028, 0x0030)]).split("\\")]
    between_slices = float(text(first[(0x0018, 0x0088)]))
    repetition = float(text(first[(0x0018, 0x0080)])) / 1000
    np.testing.assert_allclose(
        image.header.get_zooms(), [*spacing, between_slices, repetition], rtol=1e-5
    )
    assert np.isfinite(load(converted)).all()

    [sidecar] = outputs["bids"]
    bids = json.loads(Path(sidecar).read_text())
    assert bids["SeriesDescription"] == text(first[(0x0008, 0x103E)])
    assert bids["SeriesNumber"] == int(series_number)
    assert bids["RepetitionTime"] == pytest.approx(repetition)
    [bvals] = outputs["bvals"]
    b_values = [float(text(header[(0x0019, 0x100C)])) for header in headers]
    assert [float(v) for v in Path(bvals).read_text().split()] == b_values


# --- nipype's command lines and the help ----------------------------------------------------------


NIPYPE_CASES = [
    (
        "MRConvert",
        {"in_file": "a.nii", "out_file": "o.nii", "coord": [3, 0], "axes": [0, 1, 2]},
        ["--in-file", "a.nii", "--out-file", "o.nii", "--coord", "3", "0", "--axes", "0", "1", "2"],
    ),
    (
        "MRConvert",
        {"in_file": "a.nii", "in_bvec": "bvecs", "in_bval": "bvals", "json_export": "h.json"},
        [
            "--in-file",
            "a.nii",
            "--in-bvec",
            "bvecs",
            "--in-bval",
            "bvals",
            "--json-export",
            "h.json",
        ],
    ),
    (
        "MRConvert",
        {
            "in_file": "a.nii",
            "vox": [1.5, 2.0, 3.0],
            "scaling": [0.0, 1.0],
            "grad_file": "grad.b",
            "bval_scale": "no",
            "nthreads": 2,
            "out_bvec": "o.bvec",
            "out_bval": "o.bval",
        },
        [
            "--in-file",
            "a.nii",
            "--vox",
            "1.5",
            "2.0",
            "3.0",
            "--scaling",
            "0.0",
            "1.0",
            "--grad-file",
            "grad.b",
            "--bval-scale",
            "no",
            "--nthreads",
            "2",
            "--out-bvec",
            "o.bvec",
            "--out-bval",
            "o.bval",
        ],
    ),
    (
        "MRMath",
        {"in_file": "a.nii", "operation": "median", "axis": 3, "out_file": "m.nii", "nthreads": 1},
        [
            "--in-file",
            "a.nii",
            "--operation",
            "median",
            "--axis",
            "3",
            "--out-file",
            "m.nii",
            "--nthreads",
            "1",
        ],
    ),
    (
        "FitTensor",
        {"in_file": "a.nii", "grad_file": "grad.b", "in_mask": "mask.nii"},
        ["--in-file", "a.nii", "--grad-file", "grad.b", "--in-mask", "mask.nii"],
    ),
    (
        "FitTensor",
        {"in_file": "a.nii", "in_bvec": "bvecs", "in_bval": "bvals", "predicted_signal": "p.nii"},
        [
            "--in-file",
            "a.nii",
            "--in-bvec",
            "bvecs",
            "--in-bval",
            "bvals",
            "--predicted-signal",
            "p.nii",
        ],
    ),
    ("Dcm2niix", {"source_dir": "dicom"}, ["--source-dir", "dicom"]),
    (
        "Dcm2niix",
        {
            "source_dir": "dicom",
            "out_filename": "%p_%s",
            "compress": "n",
            "compression": 5,
            "crop": True,
            "anon_bids": True,
            "ignore_deriv": False,
            "merge_imgs": 2,
            "series_numbers": ["1", "2"],
            "comment": "test",
        },
        [
            "--source-dir",
            "dicom",
            "--out-filename",
            "%p_%s",
            "--compress",
            "n",
            "--compression",
            "5",
            "--crop",
            "y",
            "--anon-bids",
            "y",
            "--ignore-deriv",
            "n",
            "--merge-imgs",
            "2",
            "--series-numbers",
            "1",
            "2",
            "--comment",
            "test",
        ],
    ),
]
FILES = ("a.nii", "mask.nii", "bvecs", "bvals", "grad.b")


@pytest.mark.parametrize(
    ("name", "nipype_inputs", "words"), NIPYPE_CASES, ids=[c[0] for c in NIPYPE_CASES]
)
def test_argv_is_nipypes(
    name: str, nipype_inputs: dict[str, Any], words: list[str], isolated: Path, tmp_path: Path
) -> None:
    """nipype's class of the same name renders the same words for the same inputs (nipype wants
    the input files to exist; they are empty here). dcm2niix's `-g i` is ours alone."""
    pytest.importorskip("nipype")
    from nipype.interfaces import dcm2nii, mrtrix3

    for file_name in FILES:
        (isolated / file_name).write_text("")
    (isolated / "dicom").mkdir()
    package = "dcm2nii" if name == "Dcm2niix" else "mrtrix3"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interface = getattr(dcm2nii if package == "dcm2nii" else mrtrix3, name)()
        for key, value in nipype_inputs.items():
            setattr(interface.inputs, key, value)
        theirs = shlex.split(interface.cmdline)
    plan = plan_run(
        RunRequest(
            interface=f"{package}.{name}",
            words=words,
            base_dir=str(tmp_path / "base"),
            cwd=str(isolated),
            env=dict(os.environ),
        )
    )
    ours = plan.argv
    if package == "dcm2nii":
        assert ours[1:3] == ["-g", "i"]
        ours = [ours[0], *ours[3:]]
    prefix = f"{isolated}{os.sep}"
    assert [word.replace(prefix, "") for word in ours] == theirs


def definition(name: str) -> dict[str, Any]:
    package, tool = name.split(".")
    data: dict[str, Any] = json.loads((CATALOGUE / package / f"{tool}.json").read_text())
    return data


@pytest.mark.parametrize("name", NEW)
def test_help_lists_every_input(name: str) -> None:
    shown = run_ok("run", name, "--help").stdout
    for spec in definition(name)["inputs"]:
        assert f"--{spec['id'].replace('_', '-')} " in shown, f"{name}: {spec['id']}"
    for out in definition(name)["output-files"]:
        assert out["id"] in shown


def test_dcm2niix_in_the_folder_that_holds_the_cache(
    dcm2niix_on_path: None, counting: Counting, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cd dicoms && imcache run dcm2nii.Dcm2niix --source-dir .` with the default base (the
    current folder): the cache root made inside the input folder is no part of its content, so
    the first run is cached (not "changed while reading") and the second is a hit."""
    calls = counting("dcm2niix")
    series = isolated / "dicoms"
    series.mkdir()
    for name in ["0.dcm", "1.dcm"]:
        (series / name).write_bytes((DICOM_DATA / name).read_bytes())
    monkeypatch.delenv("IMCACHE_BASE_DIR")
    monkeypatch.chdir(series)

    outputs = miss_then_hit(calls, "dcm2nii.Dcm2niix", "--source-dir", ".")

    [converted] = outputs["converted_files"]
    assert Path(converted).is_relative_to(series / "imcache_mem")
    assert load(converted).ndim == 4
    failed = [p.name for p in (series / "imcache_mem").rglob("*") if ".failed-" in p.name]
    assert failed == []
