"""A list's work in two processes: the same results as one, in order; the child's errors
raised here; a caller that stops early stops the child; one process where it may not fork."""

from __future__ import annotations

import os
import threading
import time

import pytest

from imcache.core import forked
from imcache.core.errors import ImcacheError
from imcache.core.forked import iter_in_two, map_in_two
from tests.cache_entries import forks_noted


def _pid_and_square(number: int) -> tuple[int, int]:
    return os.getpid(), number * number


def test_the_second_half_is_a_child_s_and_the_results_are_in_order() -> None:
    numbers = list(range(3000))
    results = map_in_two(_pid_and_square, numbers, fork=True)
    assert [square for _, square in results] == [n * n for n in numbers]
    pids = [pid for pid, _ in results]
    assert set(pids[:1500]) == {os.getpid()}
    assert len(set(pids[1500:])) == 1 and pids[1500] != os.getpid()


@pytest.mark.parametrize(
    ("fork", "items", "many"), [(False, 3000, 1000), (True, 1000, 1000), (True, 2, 2)]
)
def test_one_process_where_not_asked_or_too_few(fork: bool, items: int, many: int) -> None:
    results = map_in_two(_pid_and_square, list(range(items)), fork, many)
    assert {pid for pid, _ in results} == {os.getpid()}


def test_no_fork_while_another_thread_runs() -> None:
    """A fork copies only the thread it is made in: what the others held stays held."""
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not forked.may_fork()
        results = map_in_two(_pid_and_square, list(range(3000)), fork=True)
    finally:
        stop.set()
        other.join()
    assert {pid for pid, _ in results} == {os.getpid()}


def _fails_in_the_child(parent: int, number: int) -> int:
    if os.getpid() != parent:
        raise ImcacheError("cannot read x: Permission denied", "check the cache's permissions")
    return number


def _breaks_in_the_child(parent: int, number: int) -> int:
    if os.getpid() != parent:
        raise KeyError(number)
    return number


def test_what_the_child_raised_is_raised_here() -> None:
    """An ImcacheError as it was (its hint with it), anything else as a bug, never a result."""
    from functools import partial

    numbers = list(range(3000))
    with pytest.raises(ImcacheError, match="cannot read x") as raised:
        map_in_two(partial(_fails_in_the_child, os.getpid()), numbers, fork=True)
    assert raised.value.hint == "check the cache's permissions"
    with pytest.raises(RuntimeError, match="KeyError"):
        map_in_two(partial(_breaks_in_the_child, os.getpid()), numbers, fork=True)


def _slow_in_the_child(parent: int, number: int) -> int:
    if os.getpid() != parent:
        time.sleep(5)
    return number


def test_a_caller_that_stops_early_stops_the_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ls --json | head`: the pipe closes, the rows still to come are no one's."""
    from functools import partial

    children = forks_noted(monkeypatch)
    started = time.monotonic()
    results = iter_in_two(partial(_slow_in_the_child, os.getpid()), list(range(10)), True, 1)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    results.close()  # as a closed pipe's error does, through the writer's loop
    assert time.monotonic() - started < 4  # its five items would take 25 s
    assert len(children) == 1
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # reaped: not even a zombie left behind
