"""The names imcache gives to things on disk, where a str method stands in for a pattern."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from imcache.core.layout import KEY_PATTERN, is_key

KEYISH = st.text(alphabet="0123456789abcdefABCDEFg \n\u0663.", min_size=30, max_size=34)


@given(st.one_of(KEYISH, st.text(max_size=40)))
def test_is_key_is_what_the_key_pattern_says(name: str) -> None:
    assert is_key(name) == (re.fullmatch(KEY_PATTERN.pattern, name) is not None), repr(name)


def test_is_key_on_edges() -> None:
    assert is_key("0123456789abcdef" * 2)
    assert not is_key("0123456789abcdef" * 2 + "\n")
    assert not is_key("0123456789ABCDEF" * 2)
    assert not is_key("0123456789abcdef" * 2 + "0")
    assert not is_key("0123456789abcde\u0663" + "0123456789abcdef")


def test_deleting_names_never_repeat_across_threads_and_forks() -> None:
    """Two threads of a process, and a forked child (a large clear's second half), never
    name two entries' way out alike, though the token is drawn once per process."""
    import os
    import threading

    from imcache.core.layout import deleting_name, is_deleting

    names: list[str] = []

    def name_many() -> None:
        names.extend(deleting_name("/c/fsl.BET/k") for _ in range(2000))

    workers = [threading.Thread(target=name_many) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(writer, "\n".join(deleting_name("/c/fsl.BET/k") for _ in range(100)).encode())
        os._exit(0)
    os.close(writer)
    with open(reader, "rb") as pipe:
        theirs = pipe.read().decode().split("\n")
    os.waitpid(child, 0)
    assert len(set(names + theirs)) == len(names) + len(theirs) == 4100
    assert all(is_deleting(os.path.basename(name)) for name in names + theirs)
    assert {name.split("-")[1].split(".")[0] for name in theirs} == {str(child)}
