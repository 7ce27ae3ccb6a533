"""The package's face (src/imcache/__init__.py): Memory and the exceptions named lazily, so the
CLI, which imports the package on every start, never imports the Python face; typed for users."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import imcache
from tests.conftest import REPO, require_tool


def imported(raw: str) -> set[str]:
    """Module names from `python -X importtime` lines."""
    return {line.rsplit("|", 1)[-1].strip() for line in raw.splitlines() if "import time:" in line}


def test_public_names_resolve_and_all_lists_them() -> None:
    assert set(imcache.__all__) - {"__version__"} == set(imcache._PUBLIC)
    for name in imcache._PUBLIC:
        assert getattr(imcache, name).__name__ == name
    assert issubclass(imcache.ToolFailedError, imcache.ImcacheError)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = imcache.Nope  # type: ignore[attr-defined]


def test_a_cli_hit_never_imports_the_python_face(
    make_nifti: Callable[..., Path], isolated: Path
) -> None:
    require_tool("mrcat")
    make_nifti("a.nii", seed=1)
    make_nifti("b.nii", seed=2)
    command = [sys.executable, "-X", "importtime", "-m", "imcache", "run", "mrtrix3.MRCat"]
    command += ["--in-files", "a.nii", "b.nii"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    miss = subprocess.run(command, capture_output=True, text=True, env=env, cwd=isolated)
    hit = subprocess.run(command, capture_output=True, text=True, env=env, cwd=isolated)
    assert miss.returncode == hit.returncode == 0, hit.stderr
    assert "collecting precomputed outputs" in hit.stderr
    modules = imported(hit.stderr)
    assert "imcache.core.plan" in modules  # the probe sees imcache's own modules
    assert not {m for m in modules if m.startswith("imcache.api")}
    probe = [sys.executable, "-X", "importtime", "-c", "import imcache; imcache.Memory"]
    named = subprocess.run(probe, capture_output=True, text=True, env=env)
    assert "imcache.api.memory" in imported(named.stderr)  # and sees the face where it is used


USER_CODE = """
from pathlib import Path

import imcache
from imcache import Memory, Result


def merge(files: list[Path]) -> str:
    mem = Memory(base_dir=".")
    concat = mem.cache("mrtrix3.MRCat")
    res: Result = concat(in_files=files)
    out = res.outputs["out_file"]
    assert isinstance(out, str)
    try:
        concat.plan(in_files=files)
    except imcache.ToolFailedError as error:
        print(error.tool_exit_code, error.kept_dir, error.stderr_tail)
    removed = mem.clear_previous_runs(warn=False)
    return out + str(len(removed)) + res.work_dir + str(res.cached)
"""


def test_user_code_type_checks_strictly(tmp_path: Path) -> None:
    script = tmp_path / "user.py"
    script.write_text(USER_CODE)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(REPO / "src")},
    )
    assert checked.returncode == 0, checked.stdout
    assert (REPO / "src" / "imcache" / "py.typed").is_file()


def test_the_two_faces_never_import_each_other() -> None:
    package = REPO / "src" / "imcache"
    for face, other in (("api", "cli"), ("cli", "api")):
        pattern = re.compile(rf"^\s*(from|import) imcache\.{other}\b", re.M)
        offenders = [
            str(path.relative_to(package))
            for path in (package / face).rglob("*.py")
            if pattern.search(path.read_text(encoding="utf-8"))
        ]
        assert not offenders, f"{face} imports {other}: {offenders}"
    assert not re.search(r"click|rich", (package / "api" / "pipefunc.py").read_text())
