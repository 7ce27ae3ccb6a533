"""`--export NAME=PATH` puts a real mrcat output into the user's tree, never losing a file."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from imcache.core import export as export_module
from imcache.core.errors import UsageError
from imcache.core.export import ExportError, export_outputs, parse_exports
from tests.conftest import imcache, run_json
from tests.core.test_run import concat_args

Calls = Callable[[], int]


@pytest.fixture
def pair(make_nifti: Callable[..., Path]) -> tuple[Path, Path]:
    return make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)


def merged(*extra: str) -> dict[str, object]:
    return run_json(*concat_args("a.nii", "b.nii"), *extra)


def test_a_miss_and_a_hit_both_export_a_read_only_hard_link(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    first = merged("--export", "out_file=results/m.nii")
    cached = Path(str(first["outputs"]["out_file"]))  # type: ignore[index]
    target = isolated / "results" / "m.nii"
    assert target.read_bytes() == cached.read_bytes()
    assert target.stat().st_ino == cached.stat().st_ino
    assert stat.S_IMODE(cached.stat().st_mode) & 0o222 == 0, "edits must not reach the cache"
    assert first["exported"] == {str(target): str(cached)}

    target.unlink()  # `make clean`
    second = merged("--export", "out_file=results/m.nii")
    assert second["cached"] is True and counting_mrcat() == 1
    assert target.stat().st_ino == cached.stat().st_ino


def test_the_export_is_newer_than_a_touched_input(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    """make compares times: a hit after `touch a.nii` must leave a target newer than a.nii."""
    first = merged()
    hour_ago = pair[0].stat().st_mtime - 3600
    os.utime(str(first["outputs"]["out_file"]), (hour_ago, hour_ago))  # type: ignore[index]
    os.utime(pair[0])  # touch a.nii: same content, so the same key
    result = merged("--export", "out_file=m.nii")
    assert result["cached"] is True
    assert (isolated / "m.nii").stat().st_mtime_ns >= pair[0].stat().st_mtime_ns


def test_a_different_file_is_kept_unless_overwrite(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    precious = isolated / "m.nii"
    precious.write_bytes(b"my own work")
    refused = imcache(*concat_args("a.nii", "b.nii"), "--export", "out_file=m.nii")
    assert refused.exit_code == 1
    assert f"{precious} exists and differs" in refused.stderr and "--overwrite" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert precious.read_bytes() == b"my own work"

    done = merged("--export", "out_file=m.nii", "--overwrite")
    assert precious.read_bytes() == Path(str(done["outputs"]["out_file"])).read_bytes()  # type: ignore[index]


def test_an_identical_copy_is_not_a_conflict(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    first = merged()
    (isolated / "m.nii").write_bytes(Path(str(first["outputs"]["out_file"])).read_bytes())  # type: ignore[index]
    assert merged("--export", "out_file=m.nii")["cached"] is True


def test_symlink_points_into_the_entry(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    result = merged("--export", "out_file=m.nii", "--symlink")
    link = isolated / "m.nii"
    assert link.is_symlink() and os.readlink(link) == result["outputs"]["out_file"]  # type: ignore[index]
    assert merged("--export", "out_file=m.nii", "--symlink")["cached"] is True  # again: fine


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--export", "nope=x.nii"], "has no output 'nope'"),
        (["--export", "out_file"], "is not NAME=PATH"),
        (["--export", "=x.nii"], "is not NAME=PATH"),
        (["--export", "out_file=x.nii", "--export", "out_file=x.nii"], "the same path"),
    ],
)
def test_bad_exports_are_usage_errors_and_run_nothing(
    counting_mrcat: Calls, pair: tuple[Path, Path], words: list[str], message: str
) -> None:
    result = imcache(*concat_args("a.nii", "b.nii"), *words)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    if "same path" not in message:  # the paths are checked once the outputs are known
        assert counting_mrcat() == 0


def test_a_folder_in_the_way_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "out.nii"
    source.write_bytes(b"x")
    (tmp_path / "target").mkdir()
    with pytest.raises(ExportError, match="it is a folder"):
        export_outputs({"o": str(source)}, [("o", "target")], str(tmp_path))


def test_another_file_system_gets_a_writable_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "out.nii"
    source.write_bytes(b"data")

    def cross_device(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(export_module.os, "link", cross_device)
    [placed] = export_outputs({"o": str(source)}, [("o", "copy.nii")], str(tmp_path))
    copy = tmp_path / "copy.nii"
    assert placed.how == "copy" and copy.read_bytes() == b"data"
    assert copy.stat().st_ino != source.stat().st_ino
    assert os.access(copy, os.W_OK)


def test_a_list_output_goes_into_a_folder(tmp_path: Path) -> None:
    files = []
    for name in ("x.json", "y.json"):
        (tmp_path / name).write_text(name)
        files.append(str(tmp_path / name))
    placed = export_outputs({"sidecars": files}, [("sidecars", "meta")], str(tmp_path))
    assert sorted(p.target for p in placed) == [
        str(tmp_path / "meta" / n) for n in ("x.json", "y.json")
    ]
    assert (tmp_path / "meta" / "y.json").read_text() == "y.json"


def test_parse_exports_keeps_equals_signs_in_the_path() -> None:
    assert parse_exports(["o=a=b.nii"]) == [("o", "a=b.nii")]
    with pytest.raises(UsageError):
        parse_exports(["o="])
