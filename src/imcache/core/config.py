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
| remote | --remote | IMCACHE_REMOTE (s3://BUCKET[/PREFIX]) | remote | none |

`--interfaces DIR` folders are searched first, then `path`, then the built-in catalogue. Paths in
a file are relative to that file's folder. A file's `path` and `fsl-output-type` reach the core
as the environment variables they stand for (`core_env`), so they enter the key exactly as
`IMCACHE_PATH` and `FSLOUTPUTTYPE` would; `remote` reaches it as `IMCACHE_REMOTE` (see
core/remote/settings.py for its mode, endpoint and credentials, which are variables only).
The files are read only when they exist: a hit without them pays one `stat` per folder up to
the root, and imports no TOML parser.

A file is used only if it is owned by the current user or by root and is writable by nobody
else (git's `safe.directory` lesson, CVE-2022-24765; ssh's rule for its config): an imcache.toml
in a shared folder above the working one (/tmp, a group's project tree) could otherwise point
`interfaces` at definitions another user wrote, and run them. A file that fails the rule is
ignored whole and listed with the reason (`Config.files`), for the face to warn about.
"""

from __future__ import annotations

import os
import stat

from imcache.core.datatype import datatype
from imcache.core.errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

PROJECT_FILE = "imcache.toml"
COLORS = ("auto", "always", "never")
FSL_TYPES = ("NIFTI", "NIFTI_GZ", "NIFTI_PAIR", "NIFTI_PAIR_GZ")
FILE_KEYS = {
    "base-dir": "base_dir",
    "interfaces": "path",
    "color": "color",
    "fsl-output-type": "fsl_output_type",
    "remote": "remote",
}


@datatype
class Setting:
    name: str
    value: Any
    source: str  # "--base-dir", "IMCACHE_BASE_DIR", "/path/imcache.toml", "default"


@datatype
class SettingsFile:
    path: str
    ignored: str | None  # why it was not used; None: used


@datatype
class Config:
    base_dir: Setting
    path: Setting  # catalogue folders searched after --interfaces, before the built-ins
    color: Setting
    fsl_output_type: Setting  # None: each definition's own default
    remote: Setting  # None: no remote tier
    files: tuple[SettingsFile, ...] = ()  # every settings file found, used or ignored

    def warnings(self) -> list[str]:
        """One line for each file found but not used, saying why."""
        return [f"ignored {f.path}: {f.ignored}" for f in self.files if f.ignored]

    def all(self) -> list[Setting]:
        return [self.base_dir, self.path, self.color, self.fsl_output_type, self.remote]

    def core_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment the core sees: a file's settings where the variable is unset."""
        env = dict(environ)
        if self.path.value and "IMCACHE_PATH" not in env:
            env["IMCACHE_PATH"] = ":".join(self.path.value)
        if self.fsl_output_type.value and "FSLOUTPUTTYPE" not in env:
            env["FSLOUTPUTTYPE"] = self.fsl_output_type.value
        if self.remote.value:  # already the flag's, the variable's or a file's, in that order
            env["IMCACHE_REMOTE"] = self.remote.value
        return env


def load_config(flags: Mapping[str, Any], env: Mapping[str, str], cwd: str) -> Config:
    """The effective settings: `flags` holds what the command line gave (None when not given)."""
    paths = [path for path in (_project_file(cwd), _user_file(env)) if path]
    read = [(path, *_read_file(path)) for path in reversed(paths)]  # user's, then project's
    layers = [(path, values) for path, values, ignored in read if ignored is None]
    files = tuple(SettingsFile(path, ignored) for path, _, ignored in reversed(read))
    found: dict[str, Setting] = {
        "base_dir": Setting("base_dir", cwd, "default (the working folder)"),
        "path": Setting("path", [], "default (none)"),
        "color": Setting("color", "auto", "default"),
        "fsl_output_type": Setting("fsl_output_type", None, "default (each definition's)"),
        "remote": Setting("remote", None, "default (none)"),
    }
    for path, values in layers:
        for name, value in values.items():
            found[name] = Setting(name, value, path)
    for name, value, source in _from_env(env):
        found[name] = Setting(name, value, source)
    for name, (value, source) in _from_flags(flags).items():
        found[name] = Setting(name, value, source)
    _check_base_dir(found["base_dir"])
    return Config(**found, files=files)


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
    if env.get("IMCACHE_REMOTE"):
        found.append(("remote", env["IMCACHE_REMOTE"], "IMCACHE_REMOTE"))
    return found


def _from_flags(flags: Mapping[str, Any]) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    if flags.get("base_dir"):
        found["base_dir"] = (flags["base_dir"], "--base-dir")
    if flags.get("color"):
        found["color"] = (flags["color"], "--color")
    if flags.get("remote"):
        found["remote"] = (flags["remote"], "--remote")
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


def _read_file(path: str) -> tuple[dict[str, Any], str | None]:
    """The file's settings, or none and why it is not trusted (checked before it is opened:
    another user's unreadable file is ignored, not an error; and again on the file opened, so
    that one swapped in meanwhile is never read)."""
    import tomllib  # only when a file exists

    try:
        distrust = _untrusted(os.stat(path), os.lstat(path))
        if distrust:
            return {}, distrust
        with open(path, "rb") as handle:
            distrust = _untrusted(os.fstat(handle.fileno()), os.lstat(path))
            if distrust:
                return {}, distrust
            raw = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", "fix or remove the file") from exc
    return _values(path, raw), None


WRITERS = {
    stat.S_IWGRP: "its group",
    stat.S_IWOTH: "others",
    stat.S_IWGRP | stat.S_IWOTH: "its group and others",
}


def _untrusted(info: os.stat_result, name: os.stat_result) -> str | None:
    """Why a settings file (`info`, reached through `name`) may not be used, or None.

    Another user could have written it: it must be ours or root's, and writable by nobody else.
    A symbolic link counts by its owner too (whoever placed it chose what it points at)."""
    owners = [("symbolic link", name)] if stat.S_ISLNK(name.st_mode) else []
    for what, item in [*owners, ("file", info)]:
        if item.st_uid not in (os.geteuid(), 0):
            return f"the {what} is owned by {_user_name(item.st_uid)}, not by you or root"
    writable = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable:
        return f"it is writable by {WRITERS[writable]} (chmod go-w it to use it)"
    return None


def _user_name(uid: int) -> str:
    import pwd  # only to name a file's stranger owner

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _values(path: str, raw: dict[str, Any]) -> dict[str, Any]:
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
    if key == "remote":
        return _text(value, where)
    return _choice(_text(value, where), FSL_TYPES, where)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where} must be a non-empty string", "quote it in the TOML file")
    return value


def _choice(value: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(choices)}", "pick one")
    return value
