"""imcache's few settings and where each value came from.

Precedence, highest first: a command-line flag, an `IMCACHE_*` environment variable, the
project's `imcache.toml` (the nearest one in the working folder or above it), the user's
`$XDG_CONFIG_HOME/imcache/config.toml` (default `~/.config`), then the built-in default.

| setting | flag | environment | file key | default |
|---|---|---|---|---|
| base_dir | --base-dir | IMCACHE_BASE_DIR | base-dir | the working folder |
| path | (--interfaces come first) | IMCACHE_PATH (colon separated) | interfaces (list) | none |
| color | --color | IMCACHE_COLOR (NO_COLOR counts as never) | color | auto |
| fsl_output_type | - | FSLOUTPUTTYPE (FSL's own) | fsl-output-type | each definition's |

`--interfaces DIR` folders are searched first, then `path`, then the built-in catalogue. Paths in
a file are relative to that file's folder. A file's `path` and `fsl-output-type` reach the core
as the environment variables they stand for (`core_env`), so they enter the key exactly as
`IMCACHE_PATH` and `FSLOUTPUTTYPE` would. The files are read only when they exist:
a hit without them pays one `stat` per folder up to the root, and imports no TOML parser.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from imcache.core.datatype import datatype
from imcache.core.errors import UsageError

PROJECT_FILE = "imcache.toml"
COLORS = ("auto", "always", "never")
FSL_TYPES = ("NIFTI", "NIFTI_GZ", "NIFTI_PAIR", "NIFTI_PAIR_GZ")
FILE_KEYS = {
    "base-dir": "base_dir",
    "interfaces": "path",
    "color": "color",
    "fsl-output-type": "fsl_output_type",
}


@datatype
class Setting:
    name: str
    value: Any
    source: str  # "--base-dir", "IMCACHE_BASE_DIR", "/path/imcache.toml", "default"


@datatype
class Config:
    base_dir: Setting
    path: Setting  # catalogue folders searched after --interfaces, before the built-ins
    color: Setting
    fsl_output_type: Setting  # None: each definition's own default

    def all(self) -> list[Setting]:
        return [self.base_dir, self.path, self.color, self.fsl_output_type]

    def core_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment the core sees: a file's settings where the variable is unset."""
        env = dict(environ)
        if self.path.value and "IMCACHE_PATH" not in env:
            env["IMCACHE_PATH"] = ":".join(self.path.value)
        if self.fsl_output_type.value and "FSLOUTPUTTYPE" not in env:
            env["FSLOUTPUTTYPE"] = self.fsl_output_type.value
        return env


def load_config(flags: Mapping[str, Any], env: Mapping[str, str], cwd: str) -> Config:
    """The effective settings: `flags` holds what the command line gave (None when not given)."""
    files = [path for path in (_project_file(cwd), _user_file(env)) if path]
    layers = [(path, _read_file(path)) for path in reversed(files)]  # user's, then project's
    found: dict[str, Setting] = {
        "base_dir": Setting("base_dir", cwd, "default (the working folder)"),
        "path": Setting("path", [], "default (none)"),
        "color": Setting("color", "auto", "default"),
        "fsl_output_type": Setting("fsl_output_type", None, "default (each definition's)"),
    }
    for path, values in layers:
        for name, value in values.items():
            found[name] = Setting(name, value, path)
    for name, value, source in _from_env(env):
        found[name] = Setting(name, value, source)
    for name, (value, source) in _from_flags(flags).items():
        found[name] = Setting(name, value, source)
    _check_base_dir(found["base_dir"])
    return Config(**found)


def _check_base_dir(setting: Setting) -> None:
    if os.path.exists(setting.value) and not os.path.isdir(setting.value):
        raise UsageError(
            f"base dir {setting.value!r} (from {setting.source}) is a file, not a folder",
            "give a folder (imcache keeps its cache in <DIR>/imcache_mem)",
        )


def _from_env(env: Mapping[str, str]) -> list[tuple[str, Any, str]]:
    found: list[tuple[str, Any, str]] = []
    if env.get("IMCACHE_BASE_DIR"):
        found.append(("base_dir", env["IMCACHE_BASE_DIR"], "IMCACHE_BASE_DIR"))
    folders = [os.path.abspath(f) for f in env.get("IMCACHE_PATH", "").split(":") if f]
    if folders:
        found.append(("path", folders, "IMCACHE_PATH"))
    if env.get("NO_COLOR"):
        found.append(("color", "never", "NO_COLOR"))
    if env.get("IMCACHE_COLOR"):
        color = _choice(env["IMCACHE_COLOR"], COLORS, "IMCACHE_COLOR")
        found.append(("color", color, "IMCACHE_COLOR"))
    if env.get("FSLOUTPUTTYPE"):
        found.append(("fsl_output_type", env["FSLOUTPUTTYPE"], "FSLOUTPUTTYPE"))
    return found


def _from_flags(flags: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    if flags.get("base_dir"):
        found["base_dir"] = (flags["base_dir"], "--base-dir")
    if flags.get("color"):
        found["color"] = (flags["color"], "--color")
    return found


def _project_file(cwd: str) -> str | None:
    folder = os.path.abspath(cwd)
    while True:
        candidate = os.path.join(folder, PROJECT_FILE)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _user_file(env: Mapping[str, str]) -> str | None:
    config_home = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    candidate = os.path.join(os.path.expanduser(config_home), "imcache", "config.toml")
    return candidate if os.path.isfile(candidate) else None


def _read_file(path: str) -> dict[str, Any]:
    import tomllib  # only when a file exists

    try:
        with open(path, "rb") as handle:
            raw = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", "fix or remove the file") from exc
    folder = os.path.dirname(path)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in FILE_KEYS:
            known = ", ".join(FILE_KEYS)
            raise UsageError(f"{path}: unknown setting {key!r}", f"the settings are: {known}")
        values[FILE_KEYS[key]] = _file_value(path, key, value, folder)
    return values


def _file_value(path: str, key: str, value: Any, folder: str) -> Any:
    where = f"{path}: {key}"
    if key == "base-dir":
        return os.path.join(folder, os.path.expanduser(_text(value, where)))
    if key == "interfaces":  # the file's spelling of IMCACHE_PATH
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where} must be a list of folders", 'e.g. interfaces = ["defs"]')
        return [os.path.join(folder, os.path.expanduser(v)) for v in value]
    if key == "color":
        return _choice(_text(value, where), COLORS, where)
    return _choice(_text(value, where), FSL_TYPES, where)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where} must be a non-empty string", "quote it in the TOML file")
    return value


def _choice(value: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(choices)}", "pick one")
    return value
