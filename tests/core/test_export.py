"""`--export NAME=PATH` puts a real mrcat output into the user's tree, never losing a file."""

from __future__ import annotations

import errno
import json
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

    def cross_device(src: str, dst: str, **_: object) -> None:
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


# --- what an export never replaces (issue 13, items 4 and 5) ------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    import socket

    server = socket.socket(socket.AF_UNIX)
    server.bind(path.name)  # relative to the working folder: a socket's path has 108 bytes
    server.close()  # the socket file stays
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


def _link_to_fifo(path: Path) -> Path:
    """As /dev/stdout is a link to a terminal or a pipe: replacing it as root breaks it."""
    path.symlink_to(_fifo(path.with_name("pipe")))
    return path


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_fifo, "a fifo"),
        (_socket, "a socket"),
        (_folder, "a folder"),
        (_link_to_fifo, "a symbolic link to a fifo"),
    ],
)
def test_a_special_file_is_never_replaced_even_with_overwrite(
    counting_mrcat: Calls,
    pair: tuple[Path, Path],
    isolated: Path,
    make: Callable[[Path], Path],
    kind: str,
) -> None:
    target = make(isolated / "out.x")
    mode = os.lstat(target).st_mode
    result = imcache(*concat_args("a.nii", "b.nii"), "--export", "out_file=out.x", "--overwrite")
    assert result.exit_code == 1, result.stderr
    assert f"cannot export to {target}: it is {kind}" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.lstat(target).st_mode == mode, "replaced by a regular file"


def test_dev_null_stays_a_device(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    """`--export out_file=/dev/null --overwrite` as root once made /dev/null a plain file."""
    guard = _fifo(isolated / "guard")
    imcache(*concat_args("a.nii", "b.nii"), "--export", "out_file=guard", "--overwrite")
    if not stat.S_ISFIFO(os.lstat(guard).st_mode):
        pytest.fail("a fifo was replaced: /dev/null would be too, so it is not tried")
    result = imcache(
        *concat_args("a.nii", "b.nii"), "--export", "out_file=/dev/null", "--overwrite"
    )
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    assert result.exit_code == 1 and "/dev/null: it is a character device" in result.stderr


@pytest.mark.parametrize("how", ["the input", "a hard link to it", "a symbolic link to it"])
def test_an_input_of_the_run_is_never_replaced(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path, how: str
) -> None:
    before = pair[0].read_bytes()
    target = pair[0]
    if how == "a hard link to it":
        target = isolated / "again.nii"
        os.link(pair[0], target)
    elif how == "a symbolic link to it":
        target = isolated / "again.nii"
        target.symlink_to(pair[0])
    result = imcache(
        *concat_args("a.nii", "b.nii"), "--export", f"out_file={target.name}", "--overwrite"
    )
    assert result.exit_code == 1, result.stderr
    assert f"cannot export to {target}: it is an input of this run" in result.stderr
    assert pair[0].read_bytes() == before and target.read_bytes() == before


def test_a_symbolic_link_target_is_replaced_itself_never_what_it_points_at(
    counting_mrcat: Calls, pair: tuple[Path, Path], isolated: Path
) -> None:
    elsewhere = isolated / "elsewhere.nii"
    elsewhere.write_bytes(b"not ours")
    (isolated / "m.nii").symlink_to(elsewhere)
    done = merged("--export", "out_file=m.nii", "--overwrite")
    assert not (isolated / "m.nii").is_symlink()
    assert (isolated / "m.nii").read_bytes() == Path(str(done["outputs"]["out_file"])).read_bytes()  # type: ignore[index]
    assert elsewhere.read_bytes() == b"not ours"


@pytest.fixture
def link_catalogue(tmp_path: Path) -> Path:
    """`test.Link`: `ln -s TARGET made_link`, an output that is a link to wherever it is told."""
    folder = tmp_path / "catalogue"
    (folder / "test").mkdir(parents=True)
    definition = {
        "name": "ln",
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "make a symbolic link",
        "command-line": "ln -s [TARGET] made_link",
        "inputs": [{"id": "target", "name": "target", "type": "String", "value-key": "[TARGET]"}],
        "output-files": [{"id": "made", "name": "made", "path-template": "made_link"}],
    }
    (folder / "test" / "Link.json").write_text(json.dumps(definition))
    return folder


def test_an_output_linking_out_of_the_entry_is_not_exported(
    link_catalogue: Path, isolated: Path
) -> None:
    """Exporting it once made its target, a file outside the cache, read-only (0444)."""
    precious = isolated / "precious.txt"
    precious.write_text("the user's own")
    precious.chmod(0o644)
    result = imcache(
        "--interfaces", str(link_catalogue), "run", "test.Link", "--target", str(precious),
        "--export", "made=exported.txt",
    )  # fmt: skip
    assert result.exit_code != 0, result.stderr
    assert "outside the cache entry" in result.stderr or "outside" in result.stderr
    assert stat.S_IMODE(precious.stat().st_mode) == 0o644, "a file outside the cache changed mode"
    assert not os.path.lexists(isolated / "exported.txt")


def test_a_link_inside_the_entry_exports_the_file_it_names(tmp_path: Path) -> None:
    entry = tmp_path / "entry"
    (entry / "real").mkdir(parents=True)
    (entry / "real" / "out.nii").write_bytes(b"data")
    (entry / "out.nii").symlink_to("real/out.nii")
    [placed] = export_outputs(
        {"o": str(entry / "out.nii")}, [("o", "x.nii")], str(tmp_path), entry=str(entry)
    )
    exported = tmp_path / "x.nii"
    assert placed.how == "hard link" and not exported.is_symlink()
    assert exported.stat().st_ino == (entry / "real" / "out.nii").stat().st_ino


def test_without_an_entry_to_tell_a_link_is_not_exported(tmp_path: Path) -> None:
    outside = tmp_path / "outside.nii"
    outside.write_bytes(b"x")
    outside.chmod(0o644)
    (tmp_path / "out.nii").symlink_to(outside)
    with pytest.raises(ExportError, match="symbolic link"):
        export_outputs({"o": str(tmp_path / "out.nii")}, [("o", "x.nii")], str(tmp_path))
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
