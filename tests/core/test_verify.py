"""Promise 4: a damaged entry is never handed out as a hit, and `imcache verify` finds the rest.

Two levels of checking are under test. A hit checks what is cheap (the record parses, its
checksum and key agree, every output exists at its recorded size): any damage of that kind makes
the next run warn, run the real mrcat again and replace the entry. Damage the cheap check cannot
see (a byte flipped in place, a log or link changed) is still a hit, a documented limit, but
`imcache verify` reads every file against the digests of the record, reports it, and `--fix`
removes it, unless a process holds the entry (its lock) right now.

mrcat runs through the `counting_mrcat` wrapper, so "it ran again" is read from a counter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import imcache, run_json

MRCAT = "mrtrix3.MRCat"
MakeNifti = Callable[..., Path]
Calls = Callable[[], int]
Damage = Callable[[Path, Path], None]  # (entry folder, output file) -> None
WAIT_S = 20.0  # the longest any helper process may take to get ready


def concat_args(out: str = "merged.nii", axis: str = "3") -> list[str]:
    return ["run", MRCAT, "--in-files", "a.nii", "b.nii", "--axis", axis, "--out-file", out]


def verify(*flags: str) -> tuple[int, dict[str, Any]]:
    """`imcache verify --json [flags]` in this process: its exit code and its report."""
    result = imcache("verify", "--json", *flags)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exit_code in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert isinstance(report, dict)
    return result.exit_code, report


def keys_of(findings: list[dict[str, Any]]) -> list[str]:
    return [finding["key"] for finding in findings]


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Change one byte in place: same size, same inode, other content."""
    data = bytearray(path.read_bytes())
    where = len(data) - 1 if offset is None else offset
    data[where] ^= 0xFF
    with open(path, "r+b") as handle:
        handle.seek(where)
        handle.write(bytes([data[where]]))


@pytest.fixture
def pair(make_nifti: MakeNifti) -> tuple[Path, Path]:
    """Two different (4, 4, 3) volumes, a.nii and b.nii, in the working folder."""
    return make_nifti("a.nii", seed=1), make_nifti("b.nii", seed=2)


@pytest.fixture
def reference(counting_mrcat: Calls, pair: tuple[Path, Path], tmp_path: Path) -> bytes:
    """The bytes of merged.nii from a fresh run in a cache of its own (mrcat is deterministic)."""
    before = counting_mrcat()
    result = run_json("--base-dir", str(tmp_path / "reference"), *concat_args())
    assert counting_mrcat() == before + 1
    return Path(result["outputs"]["out_file"]).read_bytes()


# --- (a) damage the cheap check sees: the next run warns, reruns and replaces the entry ---------


def _delete_output(entry: Path, out: Path) -> None:
    out.unlink()


def _truncate_output(entry: Path, out: Path) -> None:
    os.truncate(out, out.stat().st_size // 2)


def _replace_output(entry: Path, out: Path) -> None:
    other = entry / "other.tmp"
    other.write_bytes(b"\0" * (out.stat().st_size + 100))
    os.replace(other, out)


def _cut_record(entry: Path, out: Path) -> None:
    record = entry / "imcache.json"
    payload = record.read_bytes()
    record.write_bytes(payload[: len(payload) // 2])


def _edit_record(field: str) -> Damage:
    def edit(entry: Path, out: Path) -> None:
        record_path = entry / "imcache.json"
        record = json.loads(record_path.read_text())
        if field == "seconds":
            record["seconds"] = float(record["seconds"]) + 1.0
        else:
            record["argv"] = [*record["argv"], "-force"]
        record_path.write_text(json.dumps(record, indent=1, sort_keys=True))
        json.loads(record_path.read_text())  # still valid JSON: only the checksum can tell

    return edit


def _delete_record(entry: Path, out: Path) -> None:
    (entry / "imcache.json").unlink()


# damage -> a piece of the reason the warning must give (None: no warning, a plain miss)
HIT_DAMAGES: dict[str, tuple[Damage, str | None]] = {
    "output deleted": (_delete_output, "merged.nii"),
    "output truncated": (_truncate_output, "merged.nii changed size"),
    "output replaced by another size": (_replace_output, "merged.nii changed size"),
    "record cut short": (_cut_record, "not valid JSON"),
    "record edited (seconds)": (_edit_record("seconds"), "edited"),
    "record edited (argv)": (_edit_record("argv"), "edited"),
    "record deleted": (_delete_record, None),
}


@pytest.mark.parametrize("damage", list(HIT_DAMAGES.values()), ids=list(HIT_DAMAGES))
def test_damage_seen_by_the_cheap_check_reruns(
    damage: tuple[Damage, str | None],
    counting_mrcat: Calls,
    reference: bytes,
    cache_root: Path,
) -> None:
    """Promise 4: a damaged entry is reported, run again and replaced by an intact one."""
    damage_fn, reason = damage
    first = run_json(*concat_args())
    assert first["cached"] is False
    calls = counting_mrcat()
    entry = Path(first["work_dir"])
    out = Path(first["outputs"]["out_file"])
    assert out.read_bytes() == reference

    damage_fn(entry, out)

    again = imcache(*concat_args(), "--json")
    assert again.exit_code == 0, again.stderr
    assert counting_mrcat() == calls + 1, "a damaged entry must not be a hit"
    data = json.loads(again.stdout)
    assert data["cached"] is False
    assert data["key"] == first["key"]
    assert data["outputs"] == first["outputs"]
    warnings = re.findall(
        rf"warning: entry {first['key'][:12]} of {re.escape(MRCAT)} is damaged \((.+)\); "
        "running again",
        again.stderr,
    )
    if reason is None:
        assert "damaged" not in again.stderr, "an entry without its record is a plain miss"
        assert warnings == []
    else:
        assert len(warnings) == 1, again.stderr
        assert reason in warnings[0], warnings[0]

    assert out.read_bytes() == reference, "the replaced entry holds a fresh run's bytes"
    folders = [p for p in cache_root.glob(f"*/{first['key']}*") if p.is_dir()]
    assert folders == [entry], "one entry, no leftover"
    code, report = verify()
    assert code == 0, report
    assert report["damaged"] == [] and report["checked"] == 1

    hit = run_json(*concat_args())
    assert hit["cached"] is True, "the replaced entry is intact: a hit"
    assert counting_mrcat() == calls + 1


# --- (b) damage only verify sees ----------------------------------------------------------------


def test_same_size_edit_is_found_and_fixed_by_verify(
    counting_mrcat: Calls, reference: bytes, cache_root: Path
) -> None:
    """Promise 4: verify reads every byte; --dry-run removes nothing; --fix removes the entry."""
    first = run_json(*concat_args())
    calls = counting_mrcat()
    entry = Path(first["work_dir"])
    out = Path(first["outputs"]["out_file"])
    flip_byte(out)
    damaged_bytes = out.read_bytes()
    assert len(damaged_bytes) == len(reference) and damaged_bytes != reference

    # A hit would see it too (the output's signature moved: read again, digest mismatch, see
    # test_run.py); verify, run first, finds it without running anything.
    plain = imcache("verify")
    assert plain.exit_code == 1, plain.stderr
    assert f"damaged {MRCAT} {first['key'][:12]}: merged.nii" in plain.stdout
    assert "digest" in plain.stdout

    code, report = verify()
    assert code == 1
    assert keys_of(report["damaged"]) == [first["key"]]
    finding = report["damaged"][0]
    assert finding["interface"] == MRCAT
    assert finding["path"] == str(entry)
    assert "merged.nii" in finding["problem"] and "digest" in finding["problem"]
    assert report["removed"] == []

    code, report = verify("--fix", "--dry-run")
    assert code == 1, "--dry-run removes nothing, so the damage remains"
    assert keys_of(report["damaged"]) == [first["key"]]
    assert report["removed"] == []
    assert out.read_bytes() == damaged_bytes

    code, report = verify("--fix")
    assert code == 0, report
    assert keys_of(report["removed"]) == [first["key"]]
    assert report["in_use"] == [] and report["not_yours"] == []
    assert not entry.exists()
    assert not list(cache_root.glob(f"*/{first['key']}.deleting-*")), "removed for good"

    again = run_json(*concat_args())
    assert again["cached"] is False, "a removed entry runs again"
    assert counting_mrcat() == calls + 1
    assert out.read_bytes() == reference
    code, report = verify()
    assert code == 0 and report["damaged"] == []


# --- (c) a clean cache ---------------------------------------------------------------------------


def test_verify_clean_cache_reads_every_file(
    counting_mrcat: Calls, pair: tuple[Path, Path], cache_root: Path
) -> None:
    """Promise 4: verify passes on intact entries, and reads every recorded file to say so."""
    entries = [run_json(*concat_args(f"r{axis}.nii", axis))["work_dir"] for axis in "0123"]
    assert counting_mrcat() == 4
    assert len(set(entries)) == 4
    expected = 0
    for entry in entries:
        record = json.loads((Path(entry) / "imcache.json").read_text())
        expected += sum(item["size"] for item in record["files"].values())

    code, report = verify()
    assert code == 0, report
    assert report["checked"] == 4
    assert report["damaged"] == [] and report["removed"] == []
    assert report["bytes_read"] > 0
    assert report["bytes_read"] == expected, "every byte of every recorded file is read"

    code, report = verify("--fix")
    assert code == 0 and report["removed"] == []
    assert all(Path(entry).is_dir() for entry in entries)


# --- (d) a damaged entry in use is left alone ---------------------------------------------------

FLOCK_HOLDER = r"""
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_SH)
with open(sys.argv[2], "w") as ready:
    ready.write("0")
time.sleep(float(sys.argv[3]))
"""

# A real `imcache run` that hits, then stays alive: a hit holds its entry until its process exits.
HIT_HOLDER = r"""
import contextlib, io, sys, time
from imcache.cli.main import cli
ready, seconds, args = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        cli.main(args, standalone_mode=False)
        code = 0
    except SystemExit as done:
        code = done.code
with open(ready, "w") as handle:
    handle.write(str(code))
time.sleep(seconds)
"""


def _wait_for(path: Path, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + WAIT_S
    while not path.exists() or not path.read_text():
        if process.poll() is not None:
            _out, err = process.communicate(timeout=WAIT_S)
            pytest.fail(f"the holder exited early ({process.returncode}): {err}")
        if time.monotonic() > deadline:
            pytest.fail(f"the holder was not ready within {WAIT_S} s")
        time.sleep(0.02)
    return path.read_text()


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by a test; each is killed (by its own handle) and reaped at the end."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WAIT_S)


@pytest.mark.parametrize("holder", ["flock", "imcache hit"])
def test_fix_leaves_an_entry_in_use(
    holder: str,
    counting_mrcat: Calls,
    pair: tuple[Path, Path],
    cache_root: Path,
    tmp_path: Path,
    holders: list[subprocess.Popen[str]],
) -> None:
    """Promise 4: --fix never pulls a damaged entry from under a process holding its lock."""
    first = run_json(*concat_args())
    entry = Path(first["work_dir"])
    out = Path(first["outputs"]["out_file"])
    lock = entry.parent / f"{first['key']}.lock"
    assert lock.is_file()
    flip_byte(entry / "stderr.txt", 0)  # damage a hit does not check: a hit still holds it

    ready = tmp_path / "holder-ready"
    if holder == "flock":
        argv = [sys.executable, "-c", FLOCK_HOLDER, str(lock), str(ready), "60"]
    else:
        argv = [sys.executable, "-c", HIT_HOLDER, str(ready), "60", *concat_args()]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holders.append(process)
    assert _wait_for(ready, process) == "0"
    assert counting_mrcat() == 1, "the holder's run was a hit"

    code, report = verify("--fix")
    assert code == 1, "a damaged entry remains"
    assert keys_of(report["damaged"]) == [first["key"]]
    assert keys_of(report["in_use"]) == [first["key"]]
    assert report["removed"] == []
    assert entry.is_dir() and out.is_file(), "an entry in use is never removed"

    process.kill()
    process.communicate(timeout=WAIT_S)
    code, report = verify("--fix")
    assert code == 0, report
    assert keys_of(report["removed"]) == [first["key"]]
    assert not entry.exists()


# --- (e) the other recorded files: logs, extra files, links -------------------------------------


def _append_to_stderr(entry: Path, out: Path) -> None:
    with open(entry / "stderr.txt", "ab") as handle:
        handle.write(b"edited\n")


def _flip_stderr(entry: Path, out: Path) -> None:
    assert (entry / "stderr.txt").stat().st_size > 0, "mrcat logs its progress to stderr"
    flip_byte(entry / "stderr.txt", 0)


def _delete_stdout(entry: Path, out: Path) -> None:
    (entry / "stdout.txt").unlink()


LOG_DAMAGES: dict[str, tuple[Damage, str]] = {
    "stderr.txt appended to": (_append_to_stderr, "stderr.txt changed size"),
    "stderr.txt byte flipped": (_flip_stderr, "stderr.txt changed content (digest mismatch)"),
    "stdout.txt deleted": (_delete_stdout, "stdout.txt is missing"),
}


@pytest.mark.parametrize("damage", list(LOG_DAMAGES.values()), ids=list(LOG_DAMAGES))
def test_changed_log_is_reported(
    damage: tuple[Damage, str], counting_mrcat: Calls, pair: tuple[Path, Path]
) -> None:
    """Promise 4: every file of the entry is checked, not only the declared outputs."""
    damage_fn, problem = damage
    first = run_json(*concat_args())
    entry = Path(first["work_dir"])
    damage_fn(entry, Path(first["outputs"]["out_file"]))

    assert run_json(*concat_args())["cached"] is True, "logs are not part of the cheap check"
    code, report = verify()
    assert code == 1
    assert keys_of(report["damaged"]) == [first["key"]]
    assert report["damaged"][0]["problem"].startswith(problem), report["damaged"][0]

    code, report = verify("--fix")
    assert code == 0 and keys_of(report["removed"]) == [first["key"]]
    assert run_json(*concat_args())["cached"] is False
    assert counting_mrcat() == 2


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """A user catalogue with `test.Link` (ln -s: the output is a link) and `test.Extra` (cp into
    a file no template names: an extra file)."""
    folder = tmp_path / "catalogue"
    (folder / "test").mkdir(parents=True)
    link = {
        "name": "ln",
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "make a symbolic link",
        "command-line": "ln -s [TARGET] [LINK]",
        "inputs": [
            {"id": "target", "name": "target", "type": "String", "value-key": "[TARGET]"},
            {
                "id": "link",
                "name": "link",
                "type": "String",
                "optional": True,
                "default-value": "made_link",
                "value-key": "[LINK]",
            },
        ],
        "output-files": [{"id": "made", "name": "made", "path-template": "[LINK]"}],
    }
    extra = {
        "name": "cp",
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "copy a file into the entry under a name no template declares",
        "command-line": "cp [SOURCE] extra.bin",
        "inputs": [{"id": "source", "name": "source", "type": "File", "value-key": "[SOURCE]"}],
        "output-files": [],
    }
    (folder / "test" / "Link.json").write_text(json.dumps(link, indent=2))
    (folder / "test" / "Extra.json").write_text(json.dumps(extra, indent=2))
    return folder


def test_changed_link_is_reported(catalogue: Path) -> None:
    """Promise 4: a link in the entry is recorded by its text; another target is damage."""
    args = ["--interfaces", str(catalogue), "run", "test.Link", "--target", "somewhere/else"]
    first = run_json(*args)
    link = Path(first["outputs"]["made"])
    assert os.readlink(link) == "somewhere/else"
    record = json.loads((Path(first["work_dir"]) / "imcache.json").read_text())
    assert record["files"]["made_link"] == {"link": "somewhere/else"}
    code, _report = verify()
    assert code == 0

    link.unlink()
    link.symlink_to("somewhere/different")
    code, report = verify()
    assert code == 1
    assert keys_of(report["damaged"]) == [first["key"]]
    assert report["damaged"][0]["problem"] == "made_link is no longer the link it was"
    again = imcache(*args, "--json")
    assert json.loads(again.stdout)["cached"] is False, "a hit compares the link's signature"
    assert "made_link is no longer the link it was" in again.stderr


def test_changed_extra_file_is_reported(catalogue: Path, tmp_path: Path) -> None:
    """Promise 4: a file the tool wrote but no template names is checked like an output."""
    source = tmp_path / "work" / "source.bin"
    source.write_bytes(bytes(range(256)) * 4)
    args = ["--interfaces", str(catalogue), "run", "test.Extra", "--source", "source.bin"]
    first = run_json(*args)
    extra = Path(first["work_dir"]) / "extra.bin"
    assert first["extra_files"] == [str(extra)]
    assert extra.read_bytes() == source.read_bytes()

    flip_byte(extra, 10)
    assert run_json(*args)["cached"] is True
    code, report = verify()
    assert code == 1
    assert report["damaged"][0]["problem"] == "extra.bin changed content (digest mismatch)"
    code, report = verify("--fix")
    assert code == 0 and keys_of(report["removed"]) == [first["key"]]


def test_verify_does_not_import_the_run_pipeline() -> None:
    """verify needs one cheap check of a hit, not planning, rendering and running a tool."""
    probe = (
        "import sys\n"
        "import imcache.core.verify\n"
        "pipeline = [m for m in ('imcache.core.run', 'imcache.core.plan', 'imcache.core.outputs',"
        " 'imcache.core.process', 'subprocess',"
        " 'imcache.core.interfaces.registry', 'imcache.core.interfaces.render')"
        " if m in sys.modules]\n"
        "print(','.join(pipeline))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "", f"imported by verify: {found.stdout.strip()}"


def test_verify_reports_an_output_linking_out_of_the_entry(tmp_path: Path) -> None:
    """Issue 13 item 4: an entry made before such outputs were refused is damage; verify judges
    the link by its place, never by reading what it points at."""
    from imcache.core.layout import cache_root as root_of
    from imcache.core.store import Store

    store = Store(root_of(str(tmp_path / "base")))
    store.ensure("test.Link")
    key = "c" * 32
    entry = Path(store.prepare_entry("test.Link", key))
    outside = tmp_path / "outside.txt"
    outside.write_text("somebody else's\n")
    (entry / "made_link").symlink_to(outside)
    store.publish(
        str(entry),
        {
            "layout": 1,
            "key": key,
            "interface": "test.Link",
            "outputs": {"made": {"path": "made_link", "size": None}},
            "files": {"made_link": {"link": str(outside)}},
        },
    )
    code, report = verify()
    assert code == 1
    assert keys_of(report["damaged"]) == [key]
    assert report["damaged"][0]["problem"] == "made_link is a symbolic link out of the entry"
    assert report["bytes_read"] == 0
