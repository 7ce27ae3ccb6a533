"""A list's work in two processes: the second half in a forked child, each process with its
own interpreter lock (a thread's half waits on the other's Python). Only where the caller says
it is a command's process and no other thread runs: a fork copies the one thread it is made in.

A dry run's stat of 80,000 marks, a large clear's renames, 40 MB of JSON rows: each half in
about half the time, on the two cores this kind of machine has.
"""

from __future__ import annotations

import os
from contextlib import suppress
from typing import TypeVar

from imcache.core.errors import ImcacheError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

T = TypeVar("T")
R = TypeVar("R")

MANY = 1000  # fewer items than this are not worth a fork (about a millisecond)


def may_fork() -> bool:
    """Whether this process may fork for a half: no other thread runs (none would in the child)."""
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


def map_in_two(function: Callable[[T], R], items: list[T], fork: bool, many: int = MANY) -> list[R]:
    """`[function(item) for item in items]`, the second half in a forked child where `fork`
    allows it (a command's process) and there are more than `many` items (`iter_in_two`)."""
    return list(iter_in_two(function, items, fork, many))


def iter_in_two(
    function: Callable[[T], R], items: list[T], fork: bool, many: int = MANY
) -> Iterator[R]:
    """`map(function, items)`, the first half's results as they are made, the second half's
    made meanwhile by a forked child and sent back pickled once the first half is through;
    what the child raised is raised here. A caller that stops early (a closed pipe) stops
    the child; an error of this half waits for the child's to end, as it would have."""
    if not (fork and len(items) > many and may_fork()):
        yield from map(function, items)
        return
    import pickle

    middle = len(items) // 2
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # never returns
        os.close(reader)
        _serve_half(function, items[middle:], writer)
    os.close(writer)
    try:
        yield from map(function, items[:middle])
    except GeneratorExit:  # the caller stopped (a closed pipe): the child's work is wasted
        _stop(child)
        raise
    finally:  # the child's half ends as it would have, whatever happened to this one
        with open(reader, "rb") as pipe:
            sent = pipe.read()
        os.waitpid(child, 0)
    theirs = pickle.loads(sent) if sent else RuntimeError("the second process died")
    if isinstance(theirs, BaseException):
        raise theirs
    yield from theirs


def _serve_half(function: Callable[[T], R], items: list[T], writer: int) -> None:
    """The child's part: its results, or what it raised (an ImcacheError as it is, with its
    hint; anything else as a bug's repr), pickled into the pipe; then out, flushing nothing
    (the parent's buffers are the parent's to write)."""
    import pickle

    try:
        report: object = list(map(function, items))
    except BaseException as exc:
        report = exc if isinstance(exc, ImcacheError) else RuntimeError(repr(exc))
    try:
        with open(writer, "wb") as pipe:
            pipe.write(pickle.dumps(report))
    finally:
        os._exit(0)


def _stop(child: int) -> None:
    import signal

    with suppress(ProcessLookupError):  # already out
        os.kill(child, signal.SIGKILL)
