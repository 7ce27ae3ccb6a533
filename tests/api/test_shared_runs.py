"""Issue 16 part 1, found in review: two threads of one process on one cache root, and an output
link that climbs out through the run folder's own name."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from imcache.api import Memory
from imcache.core.errors import ImcacheError
from imcache.core.layout import is_key
from tests.api.conftest import MRCAT
from tests.conftest import first_on_path, require_tool


def test_two_spellings_of_one_root_in_threads_never_share_a_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pair: list[str]
) -> None:
    """One root reached as `real` and through a link to it: the lock table (keyed by the path
    string) lets both threads run, and both get the same `<key>.run-<host>-<pid>` folder."""
    real = require_tool("mrcat")
    slow = (
        f'#!/bin/sh\nif mkdir {tmp_path}/first 2>/dev/null; then sleep 2; fi\nexec "{real}" "$@"\n'
    )
    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": slow})
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    outcomes: dict[str, object] = {}

    def call(name: str, base: Path) -> None:
        try:
            outcomes[name] = Memory(base).cache(MRCAT)(in_files=pair).outputs.out_file
        except BaseException as exc:  # what the caller would see
            outcomes[name] = exc

    first = threading.Thread(target=call, args=("first", tmp_path / "real"))
    first.start()
    time.sleep(0.7)  # the first thread's tool is running (asleep) in its private folder
    second = threading.Thread(target=call, args=("second", tmp_path / "link"))
    second.start()
    first.join()
    second.join()
    failures = {k: v for k, v in outcomes.items() if isinstance(v, BaseException)}
    assert not failures, failures
    for out in outcomes.values():
        assert os.path.isfile(str(out))


def test_a_relative_link_through_the_run_folder_s_name_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pair: list[str]
) -> None:
    """mrcat's output moved aside and linked back as `../<key>.run-<host>-<pid>/real-out`: it
    resolves inside the folder the tool ran in, and nowhere once that folder is the entry."""
    real = require_tool("mrcat")
    script = (
        '#!/bin/sh\nfor a in "$@"; do out="$a"; done\n'
        f'"{real}" "$@" && mv "$out" "real-$out" && '
        'ln -s "../$(basename "$PWD")/real-$out" "$out"\n'
    )
    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": script})
    with pytest.raises(ImcacheError, match="a symbolic link out of its entry"):
        Memory(tmp_path / "base").cache(MRCAT)(in_files=pair)
    root = tmp_path / "base" / "imcache_mem" / MRCAT
    assert [p.name for p in root.iterdir() if is_key(p.name)] == [], "nothing cached"
