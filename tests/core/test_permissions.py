"""Promise 7, permissions: a new cache is private; `init --shared` makes one for a lab's group,
where members use each other's entries but nobody's run can replace or remove another's.

Users A and B are real other uids (setpriv, as root), running the real mrcat.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from imcache.cli.main import cli
from tests.conftest import require_tool

USER_A, USER_B, OUTSIDER = 64101, 64102, 64103
LAB = 64100  # the lab's group: A and B are members, the outsider is not

Run = Callable[..., subprocess.CompletedProcess[str]]


def test_new_root_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        result = CliRunner().invoke(cli, ["--base-dir", str(tmp_path / "b"), "init"])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.stderr
    root = tmp_path / "b" / "imcache_mem"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert "private" in result.stdout


def test_group_without_shared_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", "--group", "staff"])
    assert result.exit_code == 2
    assert "--shared" in result.stderr


def test_unknown_group_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", "--shared", "--group", "no-such-group-here"])
    assert result.exit_code == 1
    assert "no-such-group-here" in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture
def lab(world_dir: Path, make_nifti: Callable[..., Path]) -> Path:
    """A shared cache for group LAB, two inputs everyone can read, a home for each user."""
    require_tool("mrcat")
    for name, seed in (("a.nii", 1), ("b.nii", 2)):
        shutil.copy(make_nifti(name, seed=seed), world_dir / name)
        (world_dir / name).chmod(0o644)
    for user in (USER_A, USER_B, OUTSIDER):
        home = world_dir / f"home-{user}"
        home.mkdir()
        os.chown(home, user, user)
    result = CliRunner().invoke(
        cli, ["--base-dir", str(world_dir / "lab"), "init", "--shared", "--group", str(LAB)]
    )
    assert result.exit_code == 0, result.stderr
    return world_dir


def _as(other_users: Run, lab: Path, user: int, *args: str) -> subprocess.CompletedProcess[str]:
    groups = (user, LAB) if user != OUTSIDER else (user,)
    home = lab / f"home-{user}"
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "IMCACHE_BASE_DIR": str(lab / "lab")}
    return other_users(user, *args, groups=groups, cwd=lab, env=env)


MRCAT = ("run", "mrtrix3.MRCat", "--in-files", "a.nii", "b.nii", "--json")


def test_shared_root_mode_and_group(lab: Path) -> None:
    root = lab / "lab" / "imcache_mem"
    info = root.stat()
    assert stat.S_IMODE(info.st_mode) == 0o3770  # setgid + sticky, group rwx, others nothing
    assert info.st_gid == LAB


def test_members_share_entries_but_cannot_replace_them(other_users: Run, lab: Path) -> None:
    made = _as(other_users, lab, USER_A, *MRCAT)
    assert made.returncode == 0, made.stderr
    first = json.loads(made.stdout)
    assert first["cached"] is False
    entry = Path(first["work_dir"])
    assert entry.stat().st_uid == USER_A and entry.stat().st_gid == LAB
    output = Path(first["outputs"]["out_file"])
    before = output.read_bytes()

    hit = _as(other_users, lab, USER_B, *MRCAT)  # B reads A's entry: a hit
    assert hit.returncode == 0, hit.stderr
    assert json.loads(hit.stdout)["cached"] is True
    assert json.loads(hit.stdout)["outputs"] == first["outputs"]

    forced = _as(other_users, lab, USER_B, *MRCAT, "--force")  # B may not replace it
    assert forced.returncode == 1
    assert "belongs to user" in forced.stderr and "Traceback" not in forced.stderr
    assert output.read_bytes() == before and entry.stat().st_uid == USER_A

    cleared = _as(other_users, lab, USER_B, "clear", "--all", "--json")
    assert cleared.returncode == 0, cleared.stderr
    report = json.loads(cleared.stdout)
    assert report["removed"] == [] and len(report["not_yours"]) == 1
    assert output.read_bytes() == before

    # The kernel agrees: B cannot write into or remove A's entry by hand either.
    as_b = ["setpriv", f"--reuid={USER_B}", f"--regid={USER_B}", f"--groups={USER_B},{LAB}"]
    vandal = subprocess.run(
        [*as_b, "rm", "-rf", str(entry)],
        capture_output=True,
        text=True,
    )
    assert vandal.returncode != 0 and output.read_bytes() == before


def test_a_damaged_entry_of_another_user_is_not_replaced(other_users: Run, lab: Path) -> None:
    made = _as(other_users, lab, USER_A, *MRCAT)
    assert made.returncode == 0, made.stderr
    output = Path(json.loads(made.stdout)["outputs"]["out_file"])
    with output.open("ab") as handle:  # damage it (as root, standing in for a disk fault)
        handle.write(b"junk")
    damaged = output.read_bytes()

    again = _as(other_users, lab, USER_B, *MRCAT)
    assert again.returncode == 1
    assert "damaged" in again.stderr and "belongs to user" in again.stderr
    assert output.read_bytes() == damaged  # untouched: it is A's to redo

    redone = _as(other_users, lab, USER_A, *MRCAT)  # its owner's next run replaces it
    assert redone.returncode == 0, redone.stderr
    assert json.loads(redone.stdout)["cached"] is False


def test_members_add_entries_the_others_can_use(other_users: Run, lab: Path) -> None:
    by_a = _as(other_users, lab, USER_A, *MRCAT)
    by_b = _as(other_users, lab, USER_B, *MRCAT, "--axis", "2")  # another key: B's own entry
    assert by_a.returncode == 0 and by_b.returncode == 0, by_a.stderr + by_b.stderr
    b_entry = Path(json.loads(by_b.stdout)["work_dir"])
    assert b_entry.stat().st_uid == USER_B and b_entry.stat().st_gid == LAB
    back = _as(other_users, lab, USER_A, *MRCAT, "--axis", "2")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["cached"] is True
    events = (lab / "lab" / "imcache_mem" / "events.log").read_text().split()
    assert events.count("hit") == 1 and events.count("miss") == 2  # both users log


def test_outsiders_cannot_read_a_shared_cache(other_users: Run, lab: Path) -> None:
    made = _as(other_users, lab, USER_A, *MRCAT)
    assert made.returncode == 0, made.stderr
    outsider = _as(other_users, lab, OUTSIDER, *MRCAT)
    assert outsider.returncode == 1, outsider.stderr
    assert "you may not use it" in outsider.stderr and "Traceback" not in outsider.stderr


def test_private_cache_keeps_other_users_out(
    other_users: Run, world_dir: Path, make_nifti: Callable[..., Path]
) -> None:
    require_tool("mrcat")
    for name, seed in (("a.nii", 1), ("b.nii", 2)):
        shutil.copy(make_nifti(name, seed=seed), world_dir / name)
    result = CliRunner().invoke(cli, ["--base-dir", str(world_dir / "mine"), *MRCAT])
    assert result.exit_code == 0, result.stderr
    env = {"PATH": os.environ["PATH"], "HOME": str(world_dir), "IMCACHE_BASE_DIR": ""}
    env["IMCACHE_BASE_DIR"] = str(world_dir / "mine")
    other = other_users(USER_B, *MRCAT, cwd=world_dir, env=env)
    assert other.returncode == 1
    assert "mode 700" in other.stderr and "you may not use it" in other.stderr
    assert "Traceback" not in other.stderr


def test_two_members_racing_one_key_without_locks_agree(lab: Path) -> None:
    """Issue 16: where locks are not shared, two members may run one key at once. The loser's
    rename meets the winner's entry (in the sticky folder: EPERM, not ENOTEMPTY) and hands
    back the winner's entry: both exit 0 with the same path and bytes, one entry stays."""
    from tests.conftest import SITE_PACKAGES, as_user_command

    if os.geteuid() != 0:
        pytest.skip("acting as other users needs root (CI runs as root)")
    real = require_tool("mrcat")
    slow = lab / "bin" / "mrcat"
    slow.parent.mkdir()
    slow.write_text(f'#!/bin/sh\nsleep 1\nexec "{real}" "$@"\n')
    slow.chmod(0o755)
    procs = []
    for user in (USER_A, USER_B):
        env = {
            "PATH": f"{slow.parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(lab / f"home-{user}"),
            "IMCACHE_BASE_DIR": str(lab / "lab"),
            "IMCACHE_TEST_NO_LOCKS": "1",
            "PYTHONPATH": f"{Path(__file__).parents[2] / 'src'}{os.pathsep}{SITE_PACKAGES}",
        }
        argv = [*as_user_command(user, (user, LAB)), *MRCAT]
        procs.append(
            subprocess.Popen(argv, cwd=lab, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        )
    done = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _out, err in done]
    results = [json.loads(out) for out, _err in done]
    assert results[0]["cached"] is results[1]["cached"] is False, "both ran: locks were off"
    (path,) = {result["outputs"]["out_file"] for result in results}
    entry = Path(path).parent
    assert entry.stat().st_uid in (USER_A, USER_B)
    assert sorted(p.name for p in entry.parent.iterdir() if p.is_dir()) == [entry.name]
