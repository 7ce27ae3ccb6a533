"""Reading a definition file: a regular file of bounded size, never a fifo or a device.

`imcache validate` once waited for ever on a fifo (opening one blocks until a writer comes) and
read `/dev/zero` without end. A definition is opened without blocking, checked to be a regular
file on the very descriptor that is read, and read up to MAX_DEFINITION_BYTES (the largest
NiWrap descriptor is a few hundred KiB).
"""

from __future__ import annotations

import os
import stat

from imcache.core.errors import DefinitionError, UsageError

MAX_DEFINITION_BYTES = 4 << 20  # 4 MiB
LIMIT_TEXT = "4 MiB"


def read_definition(path: str) -> bytes:
    """The bytes of the definition at `path`; a usage error for anything but a regular file of
    at most MAX_DEFINITION_BYTES, a DefinitionError for one that cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DefinitionError(path, "", f"cannot read: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(
                f"{path}: not a regular file ({_kind(info.st_mode)}); a definition is a JSON "
                f"file of at most {LIMIT_TEXT}",
                "give the path of a definition file",
            )
        try:
            raw = handle.read(MAX_DEFINITION_BYTES + 1)
        except OSError as exc:
            raise DefinitionError(path, "", f"cannot read: {exc.strerror}") from exc
    if len(raw) > MAX_DEFINITION_BYTES:
        raise UsageError(
            f"{path}: larger than {LIMIT_TEXT}, the most a definition may be",
            "give the path of a definition file",
        )
    return raw


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"
