"""Settings: flags over IMCACHE_* over the project's imcache.toml over the user's config file."""

from __future__ import annotations

import json
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
