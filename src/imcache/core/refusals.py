"""What a finished attempt must pass before it is published, and how a failed one is worded.

Each refusal keeps the attempt aside (a failed folder, its logs in it) and raises the error that
says why: inputs changed while the tool ran, an output linking out of the folder, an output still
being written. A miss only: a hit never imports this module (core/run.py calls it from `_execute`).
"""

from __future__ import annotations

import os

from imcache.core.errors import (
    CacheError,
    InputChangedError,
    OutputLinkError,
    OutputStillWrittenError,
)
from imcache.core.hashing import changed_since

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from imcache.core.plan import Plan


def say_what_failures_take(plan: Plan, error: CacheError) -> None:
    """A full disk: failed attempts may be what fills it (each keeps its logs and small files)."""
    import errno  # a failed run only

    cause = error.__cause__
    if not isinstance(cause, OSError) or cause.errno not in (errno.ENOSPC, errno.EDQUOT):
        return
    from imcache.core.scan import failed_bytes

    taken = failed_bytes(plan.store)
    if taken:
        error.hint += (
            f"; failed attempts take {taken} bytes of the cache: "
            "'imcache clear --failed' removes them"
        )


def failure(exit_code: int) -> str:
    """How the tool ended: a negative code is the signal that killed it, not an exit code."""
    if exit_code >= 0:
        return f"failed with exit code {exit_code}"
    import signal  # a killed tool only

    try:
        name = f" ({signal.Signals(-exit_code).name})"
    except ValueError:
        name = ""
    return f"was killed by signal {-exit_code}{name}"


def refuse_links_out(plan: Plan, entry: str, outputs: dict[str, Any]) -> None:
    from imcache.core.outputs import links_out

    outside = links_out(entry, outputs)
    if outside:
        kept = plan.store.keep_failed(entry)
        raise OutputLinkError(
            f"{plan.tool.name} ({plan.interface.name}) left output "
            + ", ".join(outside)
            + ", a symbolic link out of its entry: the cache keeps what is inside it, "
            "never a file outside",
            f"nothing was cached; this attempt is kept in {kept}",
        )


def refuse_still_written(plan: Plan, entry: str, outputs: dict[str, Any]) -> None:
    """Just before the record: an output that moved since its digest is still being written."""
    from imcache.core.outputs import still_written

    moving = still_written(entry, outputs)
    if moving:
        raise OutputStillWrittenError(
            f"a process is still writing {', '.join(moving)} after {plan.tool.name} "
            f"({plan.interface.name}) exited, so it has no one content and was not cached",
            "find what the tool left running (a background job) and run again once it ends; "
            "this attempt is kept aside, as a failed one",
        )


def last_lines(path: str, count: int = 10, tail_bytes: int = 8192) -> tuple[str, ...]:
    """The end of a log, for the exception a caller sees (the whole log stays on disk)."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, os.fstat(log.fileno()).st_size - tail_bytes))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return ()
    return tuple(text.splitlines()[-count:])


def refuse_changed_inputs(plan: Plan, entry: str) -> None:
    """Outputs made from inputs that changed after we hashed them belong to no key: keep none."""
    changed = changed_since(plan.seen)
    if changed:
        kept = plan.store.keep_failed(entry)
        names = ", ".join(repr(path) for path in changed)
        raise InputChangedError(
            f"input {names} changed while {plan.tool.name} ran, so its outputs match no key "
            "and were not cached",
            f"run again once nothing writes to it; this attempt is kept in {kept}",
        )
