"""`--export NAME=PATH`: put a run's output where a Makefile rule or a script expects it.

Hard link where the file system allows (no bytes copied), else a copy; `--symlink` links to the
entry instead. A hard link shares its bytes with the cache entry, so the entry's file is made
read-only first: an editor or tool that writes in place is refused instead of changing what later
hits return (a tool that replaces the file, as most do, simply breaks the link).

A placed file's modification time is set to now, as if the rule had just written it, so that
`make` sees the target newer than its prerequisites.

Every placement is atomic (a temporary name beside the target, then `os.replace`), and a target
that exists and differs is left alone unless `overwrite` is set: an export never loses data.

An export only ever replaces a regular file, or a symbolic link itself (never what it points
at). Even with `overwrite` it refuses a folder, a device (`--export out=/dev/null` as root once
made /dev/null a plain file), a fifo or a socket, and any input of the same run. An output that
is a symbolic link out of its entry is not exported (a hard link would reach the link's target,
and making it read-only would change a file outside the cache); nothing outside the cache has
its mode changed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Mapping, Sequence
from typing import Literal

from imcache.core.datatype import datatype
from imcache.core.errors import ImcacheError, UsageError
from imcache.core.files import place_atomic
from imcache.core.hashing import digest_file
from imcache.core.layout import temporary_name

Mode = Literal["link", "symlink"]
OutputPaths = Mapping[str, "str | list[str]"]


class ExportError(ImcacheError):
    """A target that cannot be written, or would overwrite a different file."""


@datatype
class Placed:
    output: str
    source: str
    target: str
    how: str  # "hard link", "copy", "symlink", or "already there"


def parse_exports(specs: Sequence[str]) -> list[tuple[str, str]]:
    """`NAME=PATH` words as (name, path); a malformed one is a usage error."""
    pairs = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(
                f"--export {spec!r} is not NAME=PATH",
                "give an output name and a path, e.g. --export out_file=results/brain.nii.gz",
            )
        pairs.append((name, path))
    return pairs


def export_outputs(
    outputs: OutputPaths,
    exports: Sequence[tuple[str, str]],
    cwd: str,
    mode: Mode = "link",
    overwrite: bool = False,
    *,
    entry: str | None = None,
    inputs: Mapping[str, Sequence[int]] | None = None,
) -> list[Placed]:
    """Place each named output at its path (relative paths from `cwd`); all checked first.

    `entry` is the cache entry the outputs are in: an output linking out of it is refused.
    `inputs` are the run's input files by path, with their (device, inode, ...) as hashed (the
    plan's `seen`): none of them is ever replaced."""
    jobs = [_job(outputs, name, os.path.join(cwd, path)) for name, path in exports]
    targets = [target for _, pairs in jobs for _, target in pairs]
    if len(set(targets)) != len(targets):
        raise UsageError("two --export options name the same path", "give each its own path")
    protected = _Inputs(inputs or {})
    checked = []
    for name, pairs in jobs:
        for source, target in pairs:
            real = _inside_entry(name, source, entry)
            protected.refuse(target)
            _check_target(real, target, mode, overwrite)
            checked.append((name, real, target))
    return [
        Placed(name, real, target, _place(real, target, mode)) for name, real, target in checked
    ]


class _Inputs:
    """The run's inputs, by path and by file identity (a hard link or a link to one counts)."""

    def __init__(self, seen: Mapping[str, Sequence[int]]) -> None:
        self.paths = {os.path.abspath(path) for path in seen}
        self.files = {(int(s[0]), int(s[1])) for s in seen.values()}

    def refuse(self, target: str) -> None:
        if os.path.abspath(target) in self.paths or self._same_file(target):
            raise ExportError(
                f"cannot export to {target}: it is an input of this run",
                "give the output a path of its own; the input was left as it was",
            )

    def _same_file(self, target: str) -> bool:
        for look in (os.lstat, os.stat):  # the name itself, then what a link there names
            try:
                info = look(target)
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in self.files:
                return True
        return False


def _inside_entry(name: str, source: str, entry: str | None) -> str:
    """The output's own file: a link inside the entry resolved, a link out of it refused (and
    without an entry to tell, any link)."""
    real = os.path.realpath(source)
    inside = False
    if entry is not None:
        root = os.path.realpath(entry)
        inside = os.path.commonpath([root, real]) == root
    elif not os.path.islink(source):
        return source
    if not inside:
        raise ExportError(
            f"--export {name}: the output is a symbolic link to {real}, outside the cache entry; "
            "not exported",
            "export a file the tool wrote, or copy the link's target yourself",
        )
    return real if os.path.islink(source) else source


def _job(outputs: OutputPaths, name: str, target: str) -> tuple[str, list[tuple[str, str]]]:
    if name not in outputs:
        names = ", ".join(sorted(outputs)) or "none"
        raise UsageError(
            f"--export {name}: this run has no output {name!r}", f"its outputs: {names}"
        )
    value = outputs[name]
    if isinstance(value, str):
        return name, [(value, target)]
    # A list output (a glob): the path is a folder that receives each file under its own name.
    return name, [(source, os.path.join(target, os.path.basename(source))) for source in value]


KINDS = {  # what an export never replaces, even with overwrite
    stat.S_IFDIR: "a folder",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a fifo",
    stat.S_IFSOCK: "a socket",
}


def _check_target(source: str, target: str, mode: Mode, overwrite: bool) -> None:
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as exc:  # a path through a file (`a.nii/x`), a folder we may not enter
        raise ExportError(
            f"cannot export to {target}: {exc.strerror}", "choose a writable path"
        ) from exc
    kind = _kind(target, info)
    if kind:
        raise ExportError(
            f"cannot export to {target}: it is {kind}, and an export only ever replaces a "
            "regular file or a symbolic link (even with --overwrite)",
            "give a file path for this output",
        )
    if overwrite or _already_there(source, target, info, mode):
        return
    raise ExportError(
        f"{target} exists and differs from the output; not overwritten",
        "remove it, choose another path, or add --overwrite",
    )


def _kind(target: str, info: os.stat_result) -> str:
    """What makes `target` no place for an export ("" for a regular file or a link to one, or a
    dangling link). A link to a device is refused too: replacing /dev/stdout (a link) as root
    would break it for everyone."""
    if stat.S_ISLNK(info.st_mode):
        try:
            pointed = os.stat(target)
        except OSError:
            return ""
        if stat.S_ISREG(pointed.st_mode) or stat.S_ISDIR(pointed.st_mode):
            return ""  # the link itself is replaced, never what it points at
        return "a symbolic link to " + KINDS.get(stat.S_IFMT(pointed.st_mode), "a special file")
    if stat.S_ISREG(info.st_mode):
        return ""
    return KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")


def _already_there(source: str, target: str, info: os.stat_result, mode: Mode) -> bool:
    if mode == "symlink":
        return stat.S_ISLNK(info.st_mode) and os.readlink(target) == source
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        return False
    here = os.stat(source)
    if (info.st_dev, info.st_ino) == (here.st_dev, here.st_ino):
        return True
    return info.st_size == here.st_size and digest_file(target) == digest_file(source)


def _place(source: str, target: str, mode: Mode) -> str:
    folder = os.path.dirname(target)
    try:
        os.makedirs(folder, exist_ok=True)
        if mode == "link" and _same_file(source, target):
            how = "already there"
        else:
            # Hidden: the user's folder is not ours, and a killed export must not look like data.
            hidden = os.path.join(folder, f".{os.path.basename(target)}")
            how = place_atomic(
                target,
                lambda temporary: _make(source, temporary, mode),
                temporary=temporary_name(hidden),
            )
        if mode == "link":
            # make compares times: a target older than a touched input would be rebuilt forever.
            with contextlib.suppress(PermissionError):  # another user's file
                os.utime(target, follow_symlinks=False)  # ours: never a link put there since
    except OSError as exc:
        raise ExportError(
            f"cannot export to {exc.filename or target}: {exc.strerror or exc}",
            "choose a writable path",
        ) from exc
    return how


def _same_file(source: str, target: str) -> bool:
    try:
        return os.path.samefile(source, target) and not os.path.islink(target)
    except FileNotFoundError:
        return False


def _make(source: str, temporary: str, mode: Mode) -> str:
    if mode == "symlink":
        os.symlink(source, temporary)
        return "symlink"
    _read_only(source)
    try:
        os.link(source, temporary, follow_symlinks=False)  # the file itself, never a link's target
        return "hard link"
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    import shutil  # only when a link is impossible (another file system)

    shutil.copy2(source, temporary)
    os.chmod(temporary, stat.S_IMODE(os.stat(temporary).st_mode) | stat.S_IWUSR)
    return "copy"


def _read_only(path: str) -> None:
    """The cache's copy loses its write bits: a hard link must not let edits reach the cache.
    Never through a link: chmod would change the mode of whatever it points at."""
    info = os.lstat(path)
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISREG(info.st_mode) and mode & 0o222:
        with contextlib.suppress(PermissionError):  # another user's entry in a shared cache
            os.chmod(path, mode & ~0o222)
