"""Fixtures shared by every test: no test ever touches the user's real cache or catalogues."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from imcache.cli.main import cli

# The remote tier's fixtures (a SeaweedFS server, started only by the tests that use it).
pytest_plugins = ["tests.remote_fixtures"]

REPO = Path(__file__).resolve().parent.parent
NIWRAP = REPO.parent / "shared" / "corpus" / "niwrap"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME, cache base and working folder for each test; IMCACHE_PATH cleared."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    for folder in (home, work):
        folder.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))  # nipype's descriptions
    monkeypatch.setenv("IMCACHE_BASE_DIR", str(tmp_path / "base"))
    monkeypatch.delenv("IMCACHE_PATH", raising=False)
    monkeypatch.delenv("FSLOUTPUTTYPE", raising=False)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    return tmp_path / "base" / "imcache_mem"


def require_tool(name: str) -> str:
    """The tool's path; in CI a missing tool is a failure (make test installs it), else a skip."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; 'make test' should have installed it")
        pytest.skip(f"{name} is not installed (run 'make test' to install it)")
    return path


@pytest.fixture
def make_nifti(isolated: Path) -> Callable[..., Path]:
    """Write a small synthetic NIfTI volume; `seed` picks its content."""
    import nibabel as nib
    import numpy as np

    def make(
        name: str, seed: int = 0, shape: tuple[int, ...] = (4, 4, 3), folder: Path | None = None
    ) -> Path:
        data = np.random.default_rng(seed).random(shape, dtype=np.float32)
        path = (folder or isolated) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
        return path

    return make


def first_on_path(folder: Path, monkeypatch: pytest.MonkeyPatch, scripts: dict[str, str]) -> Path:
    """Write executable scripts (name -> text) into `folder` and put it first on PATH.

    How the tests stand in for what no real program does on demand (a slow run, a crash), or
    count the calls of a real one they then exec."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in scripts.items():
        script = folder / name
        script.write_text(text)
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


@pytest.fixture
def counting_mrcat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Put a wrapper first on PATH that counts its calls, then runs the real mrcat."""
    real = require_tool("mrcat")
    counter = tmp_path / "mrcat-calls"
    script = f'#!/bin/sh\necho x >> "{counter}"\nexec "{real}" "$@"\n'
    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": script})

    def calls() -> int:
        return len(counter.read_text().splitlines()) if counter.exists() else 0

    return calls


def imcache(*args: str) -> Result:
    """imcache in this process, through click's runner (messages and exit codes)."""
    return CliRunner().invoke(cli, list(args))


def run_ok(*args: str) -> Result:
    result = imcache(*args)
    assert result.exit_code == 0, (
        f"imcache {' '.join(args)}: exit {result.exit_code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def run_json(*args: str) -> dict[str, Any]:
    data = json.loads(run_ok(*args, "--json").stdout)
    assert isinstance(data, dict)
    return data


def run_imcache(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """imcache as a real subprocess (for exit codes, streams and races)."""
    return subprocess.run(
        [sys.executable, "-m", "imcache", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


@pytest.fixture
def imcache_proc() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_imcache


@pytest.fixture
def make_entry(make_nifti: Callable[..., Path]) -> Callable[..., Any]:
    """A new entry made by a real mrcat run (tests/cache_entries.py: `entry_maker`)."""
    from tests.cache_entries import entry_maker  # here: that module uses this one's helpers

    return entry_maker(make_nifti)


@pytest.fixture
def drop_own_holds() -> Iterator[None]:
    """In-process runs hold their entries until pytest exits: let go of them after the test."""
    yield
    from tests.cache_entries import release_own_holds

    release_own_holds()


@pytest.fixture
def niwrap() -> Iterator[Path]:
    if not NIWRAP.is_dir():
        pytest.skip(f"the NiWrap corpus is not at {NIWRAP}")
    yield NIWRAP


# --- acting as other users (shared caches, unreadable inputs, unwritable roots) ------------------

SYSTEM_PYTHON = "/usr/bin/python3"  # other users cannot reach a venv's interpreter under /root
SITE_PACKAGES = sysconfig.get_paths()["purelib"]  # click, xxhash, ... of the test venv


def as_user_command(uid: int, groups: tuple[int, ...] = ()) -> list[str]:
    """The argv prefix that runs `python -m imcache` as another user (needs root)."""
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={groups[0] if groups else uid}",
        f"--groups={','.join(str(g) for g in groups)}" if groups else "--clear-groups",
        SYSTEM_PYTHON,
        "-m",
        "imcache",
    ]


@pytest.fixture
def other_users() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run imcache as another uid, with Debian's python and this checkout's packages (root only)."""
    if os.geteuid() != 0:
        pytest.skip("acting as other users needs root (CI runs as root)")
    for needed in ("setpriv", SYSTEM_PYTHON):
        if shutil.which(needed) is None:
            pytest.fail(f"{needed} is missing; 'make test' installs it")

    def run(
        uid: int, *args: str, groups: tuple[int, ...] = (), cwd: Path, env: dict[str, str]
    ) -> subprocess.CompletedProcess[str]:
        source = str(REPO / "src")
        full_env = {**env, "PYTHONPATH": f"{source}{os.pathsep}{SITE_PACKAGES}"}
        return subprocess.run(
            [*as_user_command(uid, groups), *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder every user can enter (pytest's own tmp folders are private to root)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="imcache-test-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
