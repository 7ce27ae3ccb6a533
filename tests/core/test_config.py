"""Settings: flags over IMCACHE_* over the project's imcache.toml over the user's config file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from imcache.core.config import load_config
from imcache.core.errors import UsageError
from tests.conftest import imcache, run_ok

NO_FLAGS: dict[str, object] = {"base_dir": None, "color": None}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with an imcache.toml, and a working folder two levels below it."""
    root = tmp_path / "project"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "imcache.toml").write_text(
        'base-dir = "cache"\ninterfaces = ["defs"]\ncolor = "never"\nfsl-output-type = "NIFTI"\n'
    )
    return root


def user_file(home: Path, text: str) -> dict[str, str]:
    config = home / "xdg"
    (config / "imcache").mkdir(parents=True)
    (config / "imcache" / "config.toml").write_text(text)
    return {"XDG_CONFIG_HOME": str(config)}


def test_defaults_without_any_file(tmp_path: Path) -> None:
    config = load_config(NO_FLAGS, {}, str(tmp_path))
    assert config.base_dir.value == str(tmp_path) and config.base_dir.source.startswith("default")
    assert (config.path.value, config.color.value, config.fsl_output_type.value) == (
        [],
        "auto",
        None,
    )


def test_the_nearest_project_file_is_read_with_paths_relative_to_it(project: Path) -> None:
    config = load_config(NO_FLAGS, {}, str(project / "sub" / "deeper"))
    source = str(project / "imcache.toml")
    assert config.base_dir.value == str(project / "cache") and config.base_dir.source == source
    assert config.path.value == [str(project / "defs")]
    assert (config.color.value, config.fsl_output_type.value) == ("never", "NIFTI")


def test_environment_beats_files_and_flags_beat_environment(project: Path) -> None:
    env = {"IMCACHE_BASE_DIR": "/env/base", "IMCACHE_PATH": "/e1:/e2", "IMCACHE_COLOR": "always"}
    cwd = str(project / "sub")
    config = load_config(NO_FLAGS, env, cwd)
    assert (config.base_dir.value, config.base_dir.source) == ("/env/base", "IMCACHE_BASE_DIR")
    assert (config.path.value, config.path.source) == (["/e1", "/e2"], "IMCACHE_PATH")
    assert config.color.value == "always"
    flagged = load_config({"base_dir": "/flag", "color": "never"}, env, cwd)
    assert (flagged.base_dir.source, flagged.color.source) == ("--base-dir", "--color")


def test_project_file_beats_user_file(project: Path, tmp_path: Path) -> None:
    env = user_file(tmp_path, 'color = "always"\nbase-dir = "/user/base"\n')
    config = load_config(NO_FLAGS, env, str(project))
    assert config.color.value == "never" and config.base_dir.value == str(project / "cache")
    alone = load_config(NO_FLAGS, env, str(tmp_path))  # no project file above tmp_path
    assert alone.color.value == "always" and alone.base_dir.value == "/user/base"


def test_no_color_means_never_unless_imcache_says_otherwise(tmp_path: Path) -> None:
    assert load_config(NO_FLAGS, {"NO_COLOR": "1"}, str(tmp_path)).color.value == "never"
    both = {"NO_COLOR": "1", "IMCACHE_COLOR": "always"}
    assert load_config(NO_FLAGS, both, str(tmp_path)).color.value == "always"


def test_file_settings_reach_the_core_as_their_variables(project: Path) -> None:
    config = load_config(NO_FLAGS, {}, str(project))
    env = config.core_env({"PATH": "/bin"})
    assert env["IMCACHE_PATH"] == str(project / "defs") and env["FSLOUTPUTTYPE"] == "NIFTI"
    assert config.core_env({"FSLOUTPUTTYPE": "NIFTI_GZ"})["FSLOUTPUTTYPE"] == "NIFTI_GZ"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colr = 'never'\n", "unknown setting 'colr'"),
        ("color = 'blue'\n", "'blue' is not one of auto, always, never"),
        ("interfaces = 'defs'\n", "must be a list of folders"),
        ("fsl-output-type = 'ANALYZE'\n", "'ANALYZE' is not one of"),
        ("base-dir = \n", "cannot read"),
    ],
)
def test_a_bad_file_is_named_with_its_setting(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "imcache.toml").write_text(text)
    with pytest.raises(UsageError, match=message) as caught:
        load_config(NO_FLAGS, {}, str(tmp_path))
    assert str(tmp_path / "imcache.toml") in str(caught.value)


def test_config_command_shows_values_and_sources(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "sub")
    monkeypatch.delenv("IMCACHE_BASE_DIR")
    shown = json.loads(run_ok("config", "--json").stdout)
    assert shown["base_dir"] == {
        "value": str(project / "cache"),
        "source": str(project / "imcache.toml"),
    }
    monkeypatch.setenv("IMCACHE_COLOR", "auto")
    lines = run_ok("--base-dir", str(project), "config").stdout.splitlines()
    assert f"base_dir         {project}  (--base-dir)" in lines
    assert "color            auto  (IMCACHE_COLOR)" in lines


def test_a_file_output_type_enters_the_key(
    project: Path, monkeypatch: pytest.MonkeyPatch, make_nifti: object
) -> None:
    """fsl-output-type in imcache.toml changes fsl.Merge's output name and key, as FSLOUTPUTTYPE."""
    monkeypatch.chdir(project)
    (project / "a.nii").write_bytes(b"")
    words = ["run", "fsl.Merge", "--dimension", "t", "--in-files", "a.nii", "--dry-run", "--json"]
    from_file = json.loads(run_ok(*words).stdout)
    assert from_file["argv"][2] == "a_merged.nii"
    monkeypatch.setenv("FSLOUTPUTTYPE", "NIFTI_GZ")
    from_env = json.loads(run_ok(*words).stdout)
    assert from_env["argv"][2] == "a_merged.nii.gz" and from_env["key"] != from_file["key"]


def test_a_base_dir_that_is_a_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    result = imcache("--base-dir", str(tmp_path / "f"), "config")
    assert result.exit_code == 2 and "is a file" in result.stderr


# --- whose file it is (issue 13, item 6) --------------------------------------------------------


def _planted(project: Path) -> Path:
    """The project's file, as another user could leave it in a folder above the working one."""
    return project / "imcache.toml"


def _ignored(config: object, path: Path) -> None:
    assert all(s.source != str(path) for s in config.all()), "a setting came from it"  # type: ignore[attr-defined]
    assert config.base_dir.value == str(path.parent / "sub")  # type: ignore[attr-defined]


def test_a_group_writable_file_is_ignored_with_a_warning(project: Path) -> None:
    planted = _planted(project)
    planted.chmod(0o664)
    config = load_config(NO_FLAGS, {}, str(project / "sub"))
    _ignored(config, planted)
    assert config.warnings() == [
        f"ignored {planted}: it is writable by its group (chmod go-w it to use it)"
    ]
    planted.chmod(0o646)
    assert "writable by others" in load_config(NO_FLAGS, {}, str(project / "sub")).warnings()[0]
    planted.chmod(0o644)
    used = load_config(NO_FLAGS, {}, str(project / "sub"))
    assert used.warnings() == [] and used.color.source == str(planted)


def test_another_user_s_file_is_ignored_with_a_warning(project: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root (CI runs as root)")
    import pwd

    nobody = pwd.getpwnam("nobody")
    planted = _planted(project)
    os.chown(planted, nobody.pw_uid, nobody.pw_gid)
    planted.chmod(0o600)  # not even readable by its victim: ignored all the same, not an error
    config = load_config(NO_FLAGS, {}, str(project / "sub"))
    _ignored(config, planted)
    assert config.warnings() == [
        f"ignored {planted}: the file is owned by nobody (uid {nobody.pw_uid}), not by you or root"
    ]


def test_a_link_placed_by_another_user_is_ignored(project: Path, tmp_path: Path) -> None:
    """Whoever placed the link chose what it points at, even a file of ours."""
    if os.geteuid() != 0:
        pytest.skip("giving a link to another user needs root (CI runs as root)")
    import pwd

    ours = tmp_path / "ours.toml"
    _planted(project).rename(ours)
    _planted(project).symlink_to(ours)
    os.chown(_planted(project), pwd.getpwnam("nobody").pw_uid, -1, follow_symlinks=False)
    config = load_config(NO_FLAGS, {}, str(project / "sub"))
    _ignored(config, _planted(project))
    assert "the symbolic link is owned by nobody" in config.warnings()[0]


def test_the_warning_and_the_config_command_name_the_file(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI: one warning line on stderr, and `imcache config` lists the file, ignored
    and why (text and --json), or used."""
    planted = _planted(project)
    planted.chmod(0o664)
    monkeypatch.chdir(project / "sub")
    result = imcache("config")
    assert result.exit_code == 0, result.stderr
    warning = f"imcache: warning: ignored {planted}: it is writable by its group"
    assert result.stderr.startswith(warning) and len(result.stderr.splitlines()) == 1
    assert f"file             {planted}  (ignored: it is writable by its group" in result.stdout
    assert "color            auto  (default)" in result.stdout
    shown = json.loads(imcache("config", "--json").stdout)
    assert shown["files"] == [
        {
            "path": str(planted),
            "used": False,
            "ignored": "it is writable by its group (chmod go-w it to use it)",
        }
    ]
    planted.chmod(0o644)
    shown = json.loads(run_ok("config", "--json").stdout)
    assert shown["files"] == [{"path": str(planted), "used": True, "ignored": None}]
    assert shown["color"]["source"] == str(planted)


def test_a_definition_planted_by_another_user_is_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hostile case: an imcache.toml another user left in a folder above ours points
    `interfaces` at their definition; it is ignored, so their tool is never found nor run."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root (CI runs as root)")
    import pwd

    shared = tmp_path / "shared"
    (shared / "defs" / "evil").mkdir(parents=True)
    proof = tmp_path / "ran"
    definition = {
        "name": "touch",
        "tool-version": "1",
        "schema-version": "0.5",
        "description": "what another user wants us to run",
        "command-line": f"touch {proof}",
        "inputs": [],
        "output-files": [],
    }
    (shared / "defs" / "evil" / "Run.json").write_text(json.dumps(definition))
    planted = shared / "imcache.toml"
    planted.write_text('interfaces = ["defs"]\n')
    os.chown(planted, pwd.getpwnam("nobody").pw_uid, -1)
    (shared / "mine").mkdir()
    monkeypatch.chdir(shared / "mine")
    result = imcache("run", "evil.Run")
    assert result.exit_code == 2, result.stderr
    assert f"warning: ignored {planted}: the file is owned by nobody" in result.stderr
    assert "unknown interface 'evil.Run'" in result.stderr
    assert not proof.exists()


def test_the_user_s_own_file_follows_the_same_rule(tmp_path: Path) -> None:
    env = user_file(tmp_path, 'color = "always"\n')
    mine = Path(env["XDG_CONFIG_HOME"]) / "imcache" / "config.toml"
    mine.chmod(0o666)
    config = load_config(NO_FLAGS, env, str(tmp_path))
    assert config.color.value == "auto"
    assert config.warnings() == [
        f"ignored {mine}: it is writable by its group and others (chmod go-w it to use it)"
    ]
