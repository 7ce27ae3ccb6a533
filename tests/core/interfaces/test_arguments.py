"""Raw values from either face (core/interfaces/arguments.py): Python keyword values become the
raw form of the CLI's words, and the same checks (resolve_values) judge both."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imcache.core.errors import UsageError
from imcache.core.interfaces.arguments import given_values, parse_words
from imcache.core.interfaces.model import FileArg
from imcache.core.interfaces.registry import resolve, search_path
from imcache.core.interfaces.values import PYTHON_NAMES, resolve_values
from imcache.core.plan import RunRequest, plan_run

MRCAT = "mrtrix3.MRCat"


def mrcat():  # type: ignore[no-untyped-def]
    return resolve(MRCAT, search_path((), {}))


class Numpyish:
    """Stands in for numpy's scalars: an integer by __index__ only."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


def test_python_values_map_to_the_raw_form_of_words(isolated: Path) -> None:
    raw = given_values(
        mrcat(),
        {"in_files": (Path("a.nii"), "b.nii"), "axis": Numpyish(3), "datatype": None},
    )
    assert raw == {"in_files": ["a.nii", "b.nii"], "axis": 3}  # None: not given


def test_python_and_words_resolve_to_the_same_values(isolated: Path) -> None:
    for name in ("a.nii", "b.nii"):
        (isolated / name).write_bytes(b"x")
    interface = mrcat()
    cwd = str(isolated)
    from_words = resolve_values(
        interface, parse_words(interface, ["--in-files", "a.nii", "b.nii", "--axis", "3"]), {}, cwd
    )
    given = given_values(interface, {"in_files": [isolated / "a.nii", "b.nii"], "axis": 3})
    from_python = resolve_values(interface, given, {}, cwd, names=PYTHON_NAMES)
    assert from_python["axis"] == from_words["axis"] == 3
    files = from_python["in_files"]
    assert isinstance(files, list) and isinstance(files[0], FileArg)
    assert [f.path for f in files] == [f.path for f in from_words["in_files"]]  # type: ignore[union-attr]
    assert from_python["out_file"] == from_words["out_file"] == "concatenated.mif"


def test_python_values_and_words_plan_the_same_key(isolated: Path) -> None:
    for name in ("a.nii", "b.nii"):
        (isolated / name).write_bytes(name.encode())
    common = {"base_dir": str(isolated), "cwd": str(isolated), "env": dict(os.environ)}
    words = plan_run(
        RunRequest(interface=MRCAT, words=["--in-files", "a.nii", "b.nii", "--axis", "3"], **common)  # type: ignore[arg-type]
    )
    values = plan_run(
        RunRequest(
            interface=MRCAT, words=[], values={"in_files": ["a.nii", "b.nii"], "axis": 3}, **common
        )  # type: ignore[arg-type]
    )
    assert values.key == words.key
    assert values.argv == words.argv


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"in_file": ["a.nii"]}, "has no input in_file; did you mean in_files?"),
        ({"in_files": ["a.nii"], "axis": -1}, "axis must be >= 0"),
        ({"in_files": ["a.nii"], "axis": True}, "axis takes a number, not True"),
        ({"in_files": ["a.nii"], "axis": 1.5}, "axis must be a whole number"),
        ({"in_files": ["a.nii"], "datatype": 3}, "datatype takes a string, not 3"),
        ({"in_files": ["a.nii"], "datatype": "float"}, "datatype 'float' is not one of"),
        ({"in_files": ["missing.nii"]}, "in_files 'missing.nii': no such file"),
        ({"in_files": [object()]}, "in_files takes a file, not <object"),
        ({"axis": 3}, "in_files is required"),
    ],
)
def test_a_wrong_python_value_is_a_usage_error_naming_the_keyword(
    isolated: Path, given: dict[str, object], message: str
) -> None:
    (isolated / "a.nii").write_bytes(b"x")
    interface = mrcat()
    with pytest.raises(UsageError) as caught:
        resolve_values(interface, given_values(interface, given), {}, str(isolated), PYTHON_NAMES)
    assert message in str(caught.value)
    assert "--" not in caught.value.message  # Python's names, not the command line's options
