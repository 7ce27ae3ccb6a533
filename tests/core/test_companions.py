"""Images of several files (issue 13, item 1): every file a format reads with the named one is part
of that input's content, so it enters the key and is watched like the named file."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from imcache.core import hashing
from imcache.core.companions import companions
from imcache.core.errors import InputChangedError, UsageError
from imcache.core.hashing import DigestMemo, Reader, changed_since
from imcache.core.interfaces.model import FileArg
from imcache.core.keystream import encode_value
from tests.conftest import imcache, require_tool, run_json

MRSTATS = "mrtrix3.MRStats"


def _mean(image: Path) -> tuple[str, bool]:
    """imcache's `mrstats -output mean IMAGE`: the value and whether it came from the cache."""
    result = run_json("run", MRSTATS, "--in-file", str(image), "--output", "mean")
    stdout = Path(str(result["outputs"]["stats"]))  # type: ignore[index]
    return stdout.read_text().strip(), bool(result["cached"])


def _mih(source: Path, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([require_tool("mrconvert"), "-quiet", str(source), str(target)], check=True)
    return target


def test_a_mih_header_s_data_file_enters_the_key(
    make_nifti: Callable[..., Path], isolated: Path
) -> None:
    """The reproduction: the .dat beside a .mih replaced by another image's -> a miss, new value."""
    require_tool("mrstats")
    one = _mih(make_nifti("a.nii", seed=1), isolated / "s1" / "vol.mih")
    _mih(make_nifti("b.nii", seed=2), isolated / "s2" / "vol.mih")
    assert "file: vol.dat" in one.read_text()
    first, cached = _mean(one)
    assert not cached and _mean(one) == (first, True)

    shutil.copyfile(isolated / "s2" / "vol.dat", isolated / "s1" / "vol.dat")
    now = subprocess.run(
        ["mrstats", "-output", "mean", str(one)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert now != first
    assert _mean(one) == (now, False), "a changed data file must be a miss, never the old value"


def test_a_pair_s_header_enters_the_key(make_nifti: Callable[..., Path], isolated: Path) -> None:
    """mrstats given x.img reads x.hdr too: the header's size changed -> a miss, new value."""
    require_tool("mrstats")
    image = _mih(make_nifti("a.nii", seed=1), isolated / "p" / "x.img")  # writes x.hdr + x.img
    header = isolated / "p" / "x.hdr"
    assert header.stat().st_size >= 348
    first, _ = _mean(image)
    content = bytearray(header.read_bytes())
    assert struct.unpack("<4h", content[40:48]) == (3, 4, 4, 3)  # dim[0..3], little-endian
    content[46:48] = struct.pack("<h", 2)  # two slices of three: the mean of fewer voxels
    header.write_bytes(bytes(content))
    second, cached = _mean(image)
    assert not cached, "a changed header must be a miss, never the old value"
    assert second != first


def _key_of(path: Path, reader: Reader | None = None) -> bytes:
    return encode_value(FileArg(str(path), str(path)), reader)[0]


@pytest.mark.parametrize(
    ("given", "other"),
    [
        ("x.hdr", "x.img"),
        ("x.img", "x.hdr"),
        ("x.hdr.gz", "x.img.gz"),
        ("x.img.gz", "x.hdr.gz"),
        ("X.HDR", "X.IMG"),
    ],
)
def test_either_half_of_an_analyze_pair_brings_the_other(
    tmp_path: Path, given: str, other: str
) -> None:
    import nibabel as nib
    import numpy as np

    header = given if given.lower().startswith("x.hdr") else other
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    nib.save(nib.Nifti1Pair(data, np.eye(4)), str(tmp_path / header.lower()))
    if header != header.lower():  # nibabel writes lower case; a scanner's export need not
        for name in ("x.hdr", "x.img"):
            (tmp_path / name).rename(tmp_path / name.upper())
    assert companions(str(tmp_path / given)) == [str(tmp_path / other)]
    before = _key_of(tmp_path / given)
    changed = tmp_path / other
    packed = other.endswith(".gz")
    content = gzip.decompress(changed.read_bytes()) if packed else changed.read_bytes()
    content = content[:-1] + bytes([content[-1] ^ 1])  # one bit of the other half
    changed.write_bytes(gzip.compress(content) if packed else content)
    assert _key_of(tmp_path / given) != before


def _afni(folder: Path, view: str = "orig", brik: str = ".BRIK") -> tuple[Path, Path]:
    """A dataset's two files as AFNI writes them (the header is text; the data raw)."""
    head = folder / f"anat+{view}.HEAD"
    head.write_text("type = string-attribute\nname = TYPESTRING\ncount = 15\n'3DIM_HEAD_ANAT~\n")
    data = folder / f"anat+{view}{brik}"
    data.write_bytes(gzip.compress(b"\1" * 64) if brik.endswith(".gz") else b"\1" * 64)
    return head, data


@pytest.mark.parametrize(
    ("view", "brik"), [("orig", ".BRIK"), ("tlrc", ".BRIK.gz"), ("acpc", ".BRIK")]
)
def test_an_afni_head_and_its_brik_go_together(tmp_path: Path, view: str, brik: str) -> None:
    head, data = _afni(tmp_path, view, brik)
    assert companions(str(head)) == [str(data)] and companions(str(data)) == [str(head)]
    before = _key_of(head)
    data.write_bytes(b"\2" * 64)
    assert _key_of(head) != before
    assert "'anat+" in encode_value(FileArg(str(head), str(head)))[1], "shown with its companion"


def test_companions_count_by_name_relative_to_the_input_not_by_folder(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        _afni(tmp_path / folder)
    assert _key_of(tmp_path / "one" / "anat+orig.HEAD") == _key_of(
        tmp_path / "two" / "anat+orig.HEAD"
    )


def _header(path: Path, *file_lines: str) -> Path:
    lines = ["mrtrix image", "dim: 2,2", "vox: 1,1", "layout: +0,+1", "datatype: Float32LE"]
    path.write_text("\n".join([*lines, *(f"file: {f}" for f in file_lines)]) + "\n")
    return path


def test_mrtrix_header_rules(tmp_path: Path) -> None:
    """Relative to the header's folder, or absolute; `.` is the header itself; [] numbers files;
    the END line ends the header (a .mif's data follows it)."""
    (tmp_path / "data").mkdir()
    for name in ("data/v.dat", "s-0.dat", "s-1.dat", "s-12.dat", "abs.dat"):
        (tmp_path / name).write_bytes(b"\0" * 16)
    assert companions(str(_header(tmp_path / "a.mih", "data/v.dat"))) == [
        str(tmp_path / "data" / "v.dat")
    ]
    assert companions(str(_header(tmp_path / "b.mih", f"{tmp_path}/abs.dat 0"))) == [
        str(tmp_path / "abs.dat")
    ]
    assert companions(str(_header(tmp_path / "c.mih", "s-[].dat"))) == [
        str(tmp_path / n) for n in ("s-0.dat", "s-1.dat", "s-12.dat")
    ]
    embedded = tmp_path / "d.mif"
    embedded.write_bytes(b"mrtrix image\ndim: 2\nfile: . 64\nEND\nfile: nowhere.dat\n\xff\xfe")
    assert companions(str(embedded)) == []
    external = _header(tmp_path / "e.mif", "data/v.dat # the data, elsewhere")
    assert companions(str(external)) == [str(tmp_path / "data" / "v.dat")]


def _alone(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


ANALYZE_HEADER = (348).to_bytes(4, "big") + b"\0" * 344  # sizeof_hdr, big-endian as SPM99's


@pytest.mark.parametrize(
    ("make", "missing"),
    [
        (lambda d: _header(d / "v.mih", "v.dat"), "v.dat"),
        (lambda d: _header(d / "v.mih", "v-[].dat"), "v-[].dat"),
        (lambda d: _alone(d / "anat+orig.HEAD", b"type = string-attribute\n"), "anat+orig.BRIK"),
        (lambda d: _alone(d / "anat+tlrc.BRIK.gz", b""), "anat+tlrc.HEAD"),
        (lambda d: _alone(d / "x.img", b"\0" * 8), "x.hdr"),
        (lambda d: _alone(d / "x.hdr", ANALYZE_HEADER), "x.img"),
    ],
)
def test_a_missing_companion_is_a_usage_error_naming_it(
    tmp_path: Path, make: Callable[[Path], Path], missing: str
) -> None:
    given = make(tmp_path)
    with pytest.raises(UsageError, match="which is missing") as caught:
        _key_of(given)
    assert f"needs {str(tmp_path / missing)!r}" in caught.value.message


def test_a_missing_companion_exits_2_through_the_cli(isolated: Path) -> None:
    header = _header(isolated / "vol.mih", "vol.dat")
    result = imcache("run", MRSTATS, "--in-file", str(header), "--output", "mean")
    assert result.exit_code == 2, result.stderr
    assert f"needs {str(isolated / 'vol.dat')!r}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_companion_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "v.dat")  # hashing it would wait for a writer for ever
    with pytest.raises(UsageError, match="not a regular file"):
        _key_of(_header(tmp_path / "v.mih", "v.dat"))


def test_files_of_other_formats_have_none(tmp_path: Path) -> None:
    envi = tmp_path / "scan.hdr"
    envi.write_text("ENVI\nsamples = 4\n")  # an ENVI header: its data file is named otherwise
    folder = tmp_path / "looks.img"
    folder.mkdir()
    plain = tmp_path / "a.nii"
    plain.write_bytes(b"\0" * 352)
    not_mrtrix = tmp_path / "notes.mih"
    not_mrtrix.write_text("file: secret.dat\n")
    single = tmp_path / "single.hdr"  # a one-file NIfTI misnamed .hdr: its data is inside it
    single.write_bytes((348).to_bytes(4, "little") + b"\0" * 340 + b"n+1\0" + b"\0" * 8)
    for path in (envi, plain, not_mrtrix, single):
        assert companions(str(path)) == []
    assert Reader().companions_of(str(folder)) == []


def test_a_companion_changing_after_hashing_is_seen(tmp_path: Path) -> None:
    """What a run checks after the tool exits covers the companions too."""
    header = _header(tmp_path / "v.mih", "v.dat")
    data = tmp_path / "v.dat"
    data.write_bytes(b"\0" * 16)
    reader = Reader()
    _key_of(header, reader)
    assert str(data) in reader.seen and changed_since(reader.seen) == []
    data.write_bytes(b"\1" * 17)
    assert changed_since(reader.seen) == [str(data)]


def test_a_header_rewritten_between_parsing_and_hashing_is_refused(tmp_path: Path) -> None:
    header = _header(tmp_path / "v.mih", "v.dat")
    (tmp_path / "v.dat").write_bytes(b"\0" * 16)
    (tmp_path / "w.dat").write_bytes(b"\1" * 16)
    reader = Reader()
    reader.companions_of(str(header))  # found early (the read-ahead), from this header
    _header(header, "w.dat", "v.dat")
    with pytest.raises(InputChangedError, match="changed while imcache was reading it"):
        _key_of(header, reader)


def test_a_header_rewritten_between_hashing_and_parsing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header = _header(tmp_path / "v.mih", "v.dat")
    (tmp_path / "v.dat").write_bytes(b"\0" * 16)
    (tmp_path / "w.dat").write_bytes(b"\1" * 16)
    looks = hashing.may_have_companions

    def rewritten_first(path: str) -> bool:
        _header(header, "w.dat", "# longer: another size")  # after its hashing, before parsing
        return looks(path)

    monkeypatch.setattr(hashing, "may_have_companions", rewritten_first)
    with pytest.raises(InputChangedError, match="changed while imcache was reading it"):
        _key_of(header, Reader())


def test_a_hit_reads_no_companion_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Companions are stat'ed and memoised exactly like the named file."""
    monkeypatch.setattr(hashing, "RACY_NS", 0)
    header = _header(tmp_path / "v.mih", "v.dat")
    (tmp_path / "v.dat").write_bytes(b"\0" * 4096)
    memo = DigestMemo(str(tmp_path / "memo"))
    first = _key_of(header, Reader(memo))

    def no_read(path: str, size: int | None = None, progress: object = None) -> str:
        raise AssertionError(f"{path} was read although the memo knew it")

    monkeypatch.setattr(hashing, "digest_file", no_read)
    reader = Reader(memo)
    reader.read_ahead([str(header)])
    assert str(tmp_path / "v.dat") in reader.digests  # found by the read-ahead's memo look-up
    assert _key_of(header, reader) == first


# --- companions a definition declares (custom.imcache.companions) ------------------------------


def _dwi_catalogue(root: Path) -> Path:
    from tests.core.interfaces.test_extension import convert_definition

    definition = convert_definition()
    definition["custom"]["imcache"]["companions"] = {
        "in_file": [".bval", ".bvec", {"suffix": ".json", "required": False}]
    }
    (root / "x").mkdir(parents=True)
    (root / "x" / "Dwi.json").write_text(json.dumps(definition))
    return root


def _dry(catalogue: Path, work: Path) -> dict[str, object]:
    from imcache.core.plan import RunRequest, plan_run

    plan = plan_run(
        RunRequest(
            interface="x.Dwi",
            words=["--in-file", "dwi.nii.gz"],
            base_dir=str(work / "base"),
            cwd=str(work),
            env={"PATH": "/usr/bin:/bin"},
            catalogues=[str(catalogue)],
        )
    )
    return {"key": plan.key, "lines": plan.key_lines, "seen": plan.seen}


def test_declared_companions_enter_the_key_required_and_optional(
    tmp_path: Path, isolated: Path
) -> None:
    catalogue = _dwi_catalogue(tmp_path / "defs")
    for name, text in (("dwi.nii.gz", "image"), ("dwi.bval", "0 1000"), ("dwi.bvec", "1 0 0")):
        (isolated / name).write_text(text)
    first = _dry(catalogue, isolated)
    [line] = [line for line in first["lines"] if str(line).startswith("input.in_file")]
    assert "'dwi.bval' xxh3:" in str(line) and "'dwi.bvec' xxh3:" in str(line)
    assert str(isolated / "dwi.bval") in first["seen"], "watched like the input itself"
    (isolated / "dwi.bval").write_text("0 2000")
    assert _dry(catalogue, isolated)["key"] != first["key"], "a changed .bval misses"
    (isolated / "dwi.json").write_text("{}")
    with_json = _dry(catalogue, isolated)
    assert "'dwi.json' xxh3:" in str(with_json["lines"]), "an optional companion counts if there"
    (isolated / "dwi.bvec").unlink()
    with pytest.raises(UsageError, match=r"dwi\.bvec.*missing"):
        _dry(catalogue, isolated)


def test_a_missing_declared_companion_exits_2_and_help_lists_them(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalogue = _dwi_catalogue(tmp_path / "defs")
    monkeypatch.setenv("IMCACHE_PATH", str(catalogue))
    (isolated / "dwi.nii.gz").write_text("image")
    result = imcache("run", "x.Dwi", "--in-file", "dwi.nii.gz", "--dry-run")
    assert result.exit_code == 2
    assert "dwi.bval" in result.stderr and "missing" in result.stderr
    shown = imcache("run", "x.Dwi", "--help").stdout
    assert "Companions" in shown
    assert ".bval (required), .bvec (required), .json (optional)" in shown
