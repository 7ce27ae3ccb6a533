"""Removing entries: many side by side, as one by one would, and a link never followed."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from imcache.core import removal
from imcache.core.clear import Policy, clear
from imcache.core.errors import ImcacheError
from imcache.core.files import Deleter
from imcache.core.layout import USED_MARK
from imcache.core.scan import scan
from imcache.core.store import Store
from tests.cache_entries import EntryMaker, clone_entries, forks_noted, ok_json

pytestmark = pytest.mark.usefixtures("drop_own_holds")
DAY_NS = 86400 * 10**9


def test_a_clear_of_many_removes_side_by_side_what_one_by_one_would(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_entry("merged.nii")
    clone_entries(made, 1500)  # five interfaces, last uses over 90 days
    store = Store(str(made.path.parent.parent))
    before = {(e.interface, e.key): e.last_used_ns for e in scan(store).entries}
    threads: list[int] = []
    real = removal.remove_entry

    def counting(*args: object, **kwargs: object) -> removal.Removal:
        import threading

        threads.append(threading.get_ident())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(removal, "remove_entry", counting)
    import time

    bound = time.time_ns() - 5 * DAY_NS  # about 1,400 of them
    report = clear(store, Policy(before_ns=bound), dry_run=False)
    assert len(set(threads)) == 2, "two threads removed"
    wanted = {name for name, used in before.items() if used < bound}
    assert {(e.interface, e.key) for e in report.removed} == wanted
    assert len(wanted) > removal.PARALLEL_FROM
    assert [e.last_used_ns for e in report.removed] == sorted(
        e.last_used_ns for e in report.removed
    )
    left = {(e.interface, e.key) for e in scan(store).entries}
    assert left == set(before) - wanted
    assert not [p for p in Path(store.root).glob("*/*.deleting-*")], "all deleted (foreground)"


def test_an_entry_that_became_a_link_is_never_followed(
    make_entry: EntryMaker, tmp_path: Path
) -> None:
    made = make_entry("merged.nii")
    elsewhere = tmp_path / "elsewhere"
    shutil.move(str(made.path), elsewhere)
    os.symlink(elsewhere, made.path)
    store = Store(str(made.path.parent.parent))
    assert [e.key for e in scan(store).entries if e.key == made.key] == []  # a link: no entry
    from imcache.core.files import Deleter
    from imcache.core.scan import Entry

    entry = Entry(made.path.parent.name, made.key, str(made.path), 0, 0, 0)  # as a stale scan
    with Deleter() as deleter:
        assert removal.remove_entry(store, entry, lambda: True, deleter) is removal.Removal.GONE
    assert sorted(p.name for p in elsewhere.iterdir())  # its files are all there
    assert (elsewhere / made.out).is_file()
    ok_json("clear", "--all")
    assert (elsewhere / made.out).is_file()


def test_a_command_s_large_clear_sets_half_aside_in_a_forked_process(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fork` (what `imcache clear` asks): the same entries go as one by one, half of them
    renamed aside by another process (its pid in their names), and all deleted by this one."""
    made = make_entry("merged.nii")
    clone_entries(made, 1500)
    store = Store(str(made.path.parent.parent))
    before = {(e.interface, e.key): e.last_used_ns for e in scan(store).entries}
    set_aside: list[str] = []  # what the clear's deleter was given to delete
    real_finish = Deleter.finish

    def finishing(self: Deleter) -> None:
        set_aside.extend(self.paths)
        real_finish(self)

    monkeypatch.setattr(Deleter, "finish", finishing)
    import time

    bound = time.time_ns() - 5 * DAY_NS
    report = clear(store, Policy(before_ns=bound), dry_run=False, fork=True)
    wanted = {name for name, used in before.items() if used < bound}
    assert {(e.interface, e.key) for e in report.removed} == wanted
    assert len(wanted) > removal.PARALLEL_FROM
    pids = {os.path.basename(path).split("-")[1].split(".")[0] for path in set_aside}
    assert len(pids) == 2 and str(os.getpid()) in pids, pids
    assert len(set_aside) == len(wanted)
    assert {(e.interface, e.key) for e in scan(store).entries} == set(before) - wanted
    assert not [p for p in Path(store.root).glob("*/*.deleting-*")], "all deleted (foreground)"


def test_an_error_of_the_forked_half_is_raised_by_the_clear(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_entry("merged.nii")
    clone_entries(made, 1200)
    store = Store(str(made.path.parent.parent))
    parent = os.getpid()
    real = removal.remove_entry

    def failing(*args: object, **kwargs: object) -> removal.Removal:
        if os.getpid() != parent:
            raise ImcacheError(
                "cannot remove x: Permission denied", "check the cache's permissions"
            )
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(removal, "remove_entry", failing)
    with pytest.raises(ImcacheError, match="cannot remove x") as raised:
        clear(store, Policy(everything=True), dry_run=False, fork=True)
    assert raised.value.hint == "check the cache's permissions"


def test_a_dry_run_asks_half_its_marks_in_a_forked_process(
    make_entry: EntryMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fork`: a dry run's marks are asked by two processes (`map_in_two`), and say what one
    would: an entry whose mark was touched by hand (the index says 80 days) is kept, in
    either half."""
    made = make_entry("merged.nii")
    clone_entries(made, 1500)
    store = Store(str(made.path.parent.parent))
    bound = time.time_ns() - 5 * DAY_NS
    old = sorted(scan(store).entries, key=lambda e: e.last_used_ns)[: removal.PARALLEL_FROM + 200]
    touched = {e.key for e in old[::97]}  # spread over both halves
    for entry in old[::97]:
        os.utime(os.path.join(entry.path, USED_MARK))
    forks = forks_noted(monkeypatch)
    forked = clear(store, Policy(before_ns=bound), dry_run=True, fork=True)
    assert len(forks) == 1
    alone = clear(store, Policy(before_ns=bound), dry_run=True)
    assert len(forks) == 1
    assert [e.key for e in forked.removed] == [e.key for e in alone.removed]
    assert len(forked.kept) == len(alone.kept) and len(forked.removed) > removal.PARALLEL_FROM
    assert not touched & {e.key for e in forked.removed} and len(touched) > 10
