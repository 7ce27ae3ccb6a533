"""`imcache explain`: the key's fields, hit or miss, the nearest entry and what differs; it runs
nothing and writes nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imcache.core.explain import differences, recorded_items, tool_parts
from tests.conftest import imcache, run_json, run_ok
from tests.core.test_run import MRCAT, Calls, MakeNifti, concat_args


def _explain(*args: str) -> dict[str, object]:
    import json

    result = run_ok("explain", *args, "--json")
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def _args(*files: str) -> list[str]:
    return concat_args(*files)[1:]  # without "run": explain takes run's very arguments


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            info = os.stat(os.path.join(folder, name))
            found[os.path.join(folder, name)] = (info.st_size, info.st_mtime_ns)
    return found


def test_explain_on_an_empty_base_creates_nothing(
    counting_mrcat: Calls, make_nifti: MakeNifti, isolated: Path
) -> None:
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    result = run_ok("explain", *_args("a.nii", "b.nii"))
    root = Path(os.environ["IMCACHE_BASE_DIR"]) / "imcache_mem"
    assert not root.exists(), "explain never creates the cache root"
    assert counting_mrcat() == 0
    lines = result.stdout.splitlines()
    assert lines[-1] == f"no other entry of {MRCAT} to compare with"
    assert any(line.startswith("miss (key ") for line in lines)
    assert any("input.in_files = [file 'a.nii' xxh3:" in line for line in lines)
    assert any(line.strip().startswith("tool = ") for line in lines)
    assert any(line.strip().startswith("definition = ") for line in lines)


def test_explain_says_hit_and_writes_nothing(
    counting_mrcat: Calls, make_nifti: MakeNifti, isolated: Path
) -> None:
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    ran = run_json(*concat_args("a.nii", "b.nii"))
    make_nifti("c.nii", seed=3)  # new to the digest memo: explain must not remember it
    root = Path(os.environ["IMCACHE_BASE_DIR"]) / "imcache_mem"
    before = _tree(root)
    result = run_ok("explain", *_args("a.nii", "b.nii"))
    assert result.stdout.splitlines()[-1] == f"hit {ran['key']}"
    run_ok("explain", *_args("a.nii", "c.nii"))
    assert _tree(root) == before
    assert counting_mrcat() == 1


def test_a_miss_names_the_nearest_entry_and_each_field_that_differs(
    counting_mrcat: Calls, make_nifti: MakeNifti, isolated: Path
) -> None:
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    ran = run_json(*concat_args("a.nii", "b.nii"))
    other = run_json(*concat_args("b.nii", "a.nii", out="other.nii"))
    make_nifti("b.nii", seed=9)
    found = _explain(*_args("a.nii", "b.nii"))
    assert found["hit"] is False
    nearest = found["nearest"]
    assert isinstance(nearest, dict)
    assert nearest["key"] == ran["key"] != other["key"]
    [difference] = nearest["differences"]
    assert difference.startswith("input.in_files[1]: content ")
    assert " -> " in difference
    text = run_ok("explain", *_args("a.nii", "b.nii")).stdout
    assert f"nearest entry: {ran['key']} (of 2 compared)" in text
    assert f"  {difference}" in text.splitlines()


def test_a_tool_touched_since_reads_mtime_changed(
    counting_mrcat: Calls, make_nifti: MakeNifti, isolated: Path
) -> None:
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    ran = run_json(*concat_args("a.nii", "b.nii"))
    wrapper = isolated.parent / "bin" / "mrcat"
    os.utime(wrapper, ns=(0, 10**18))
    found = _explain(*_args("a.nii", "b.nii"))
    nearest = found["nearest"]
    assert isinstance(nearest, dict) and nearest["key"] == ran["key"]
    assert nearest["differences"] == ["tool: mtime changed"]


def test_explain_takes_run_s_arguments_and_refuses_the_same_mistakes(
    counting_mrcat: Calls, make_nifti: MakeNifti, isolated: Path
) -> None:
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    result = imcache("explain", *_args("a.nii", "b.nii"), "--get", "nonesuch")
    assert result.exit_code == 2 and "has no output 'nonesuch'" in result.stderr
    result = imcache("explain", *_args("a.nii", "b.nii"), "--depends", "absent.cfg")
    assert result.exit_code == 2 and "absent.cfg" in result.stderr
    assert run_ok("explain", *_args("a.nii", "b.nii"), "--force", "--export", "out_file=x.nii")


def test_differences_say_what_changed() -> None:
    old = {
        "tool": "/bin/t size=1 mtime_ns=5",
        "input.x": {"file": "a.mih", "xxh3": "1" * 32, "companions": {"a.dat": "2" * 32}},
        "input.n": 3,
        "input.gone": "yes",
    }
    new = {
        "tool": "/bin/t size=1 mtime_ns=6",
        "input.x": {"file": "a.mih", "xxh3": "1" * 32, "companions": {"a.dat": "3" * 32}},
        "input.n": 4,
        "depends": [{"file": "c.cfg", "xxh3": "4" * 32, "companions": {}}],
    }
    assert differences(old, new) == [
        "tool: mtime changed",
        "input.x: companion 'a.dat' content 222222222222... -> 333333333333...",
        "input.n: 3 -> 4",
        "depends: not in that entry -> [file 'c.cfg' xxh3:444444444444...]",
        "input.gone: 'yes' -> not given",
    ]
    assert differences(new, new) == []


@pytest.mark.parametrize(
    ("identity", "parts"),
    [
        ("/a b/t size=1 mtime_ns=2", {"path": "/a b/t", "size": "1", "mtime": "2"}),
        ("/bin/t xxh3:abc", {"path": "/bin/t", "content": "abc"}),
        ("not found", {"path": "not found"}),
    ],
)
def test_tool_identity_parts(identity: str, parts: dict[str, str]) -> None:
    assert tool_parts(identity) == parts


def test_an_older_record_is_compared_by_its_text() -> None:
    record = {"key_fields": ["interface = 'x.Y'", "input.a = 'one'"]}
    assert recorded_items(record) == {"interface": "'x.Y'", "input.a": "'one'"}


def test_explain_shows_each_input_s_companions_and_the_depends_files(isolated: Path) -> None:
    """A `.mih` header brings the data file it names; `--depends` files are listed too, and a
    changed companion is said to be one."""
    from tests.core.test_companions import _header

    (isolated / "vol.dat").write_bytes(b"\0" * 16)
    _header(isolated / "vol.mih", "vol.dat")
    (isolated / "tool.cfg").write_text("x")
    args = ["mrtrix3.MRStats", "--in-file", "vol.mih", "--output", "mean"]
    found = _explain(*args, "--depends", "tool.cfg")
    fields = found["fields"]
    assert isinstance(fields, dict)
    assert list(fields["input.in_file"]["companions"]) == ["vol.dat"]
    assert [item["file"] for item in fields["depends"]] == ["tool.cfg"]
    text = run_ok("explain", *args, "--depends", "tool.cfg").stdout
    assert "+ 'vol.dat' xxh3:" in text
    assert "depends = [file 'tool.cfg' xxh3:" in text
    old = dict(fields)
    old["input.in_file"] = {**fields["input.in_file"], "companions": {"vol.dat": "0" * 32}}
    assert differences(old, fields) == [
        f"input.in_file: companion 'vol.dat' content 000000000000... -> "
        f"{fields['input.in_file']['companions']['vol.dat'][:12]}..."
    ]
