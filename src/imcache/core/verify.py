"""`imcache verify`: every entry's files against the digests its record holds.

A hit checks only what is cheap (the record's checksum, the outputs' presence and sizes); verify
reads everything, so that an edit that kept a file's size is found too.
"""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from imcache.core.datatype import datatype, field
from imcache.core.entry import output_damage
from imcache.core.files import Deleter
from imcache.core.hashing import digest_file
from imcache.core.removal import Removal, remove_entry
from imcache.core.scan import Entry, scan
from imcache.core.store import Store


@datatype
class Finding:
    entry: Entry
    problem: str


@datatype(frozen=False)
class VerifyReport:
    checked: int = 0
    bytes_read: int = 0
    damaged: list[Finding] = field(default_factory=list)
    removed: list[Finding] = field(default_factory=list)  # with --fix
    in_use: list[Finding] = field(default_factory=list)  # damaged, but a process holds it
    not_yours: list[Finding] = field(default_factory=list)  # damaged, another user's entry
    fix: bool = False
    dry_run: bool = False

    @property
    def remaining(self) -> list[Finding]:
        """Damaged entries still in the cache after this command."""
        if not self.fix or self.dry_run:
            return self.damaged
        return self.in_use + self.not_yours

    def note(self, finding: Finding, outcome: Removal) -> None:
        """File a damaged entry under what --fix made of it (gone or repaired meanwhile: none)."""
        lists = {
            Removal.REMOVED: self.removed,
            Removal.IN_USE: self.in_use,
            Removal.NOT_YOURS: self.not_yours,
        }
        if outcome in lists:
            lists[outcome].append(finding)


def verify(store: Store, fix: bool = False, dry_run: bool = False) -> VerifyReport:
    report = VerifyReport(fix=fix, dry_run=dry_run)
    entries = scan(store).entries
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda e: check_entry(store, e), entries))
        report.checked = len(entries)
        for entry, (problem, read) in zip(entries, results, strict=True):
            report.bytes_read += read
            if problem:
                report.damaged.append(Finding(entry, problem))
    if fix and not dry_run:
        with Deleter() as deleter:
            _remove_damaged(store, report, deleter)
    return report


def _remove_damaged(store: Store, report: VerifyReport, deleter: Deleter) -> None:
    for finding in report.damaged:

        def still_damaged(entry: Entry = finding.entry) -> bool:
            # Under the lock, look again: a run may have replaced the entry meanwhile.
            return bool(check_entry(store, entry)[0])

        report.note(finding, remove_entry(store, finding.entry, still_damaged, deleter))


def check_entry(store: Store, entry: Entry) -> tuple[str, int]:
    """What is wrong with an entry ("" if nothing), and how many bytes were read to tell."""
    record, problem = store.check_record(entry.path)
    if record is None:
        return problem or "its record is gone", 0
    if record.get("key") != entry.key or record.get("interface") != entry.interface:
        return "its record is for another key or interface", 0
    problem = output_damage(entry.path, record, rehash=False)  # every digest is read below
    if problem:
        return problem, 0
    files = record.get("files")
    if not isinstance(files, dict):
        return "its record holds no digests (made by an older imcache)", 0
    read = 0
    for relative, expected in sorted(files.items()):
        problem, size = _check_file(os.path.join(entry.path, relative), expected)
        read += size
        if problem:
            return f"{relative} {problem}", read
    return "", read


def _check_file(path: str, expected: Any) -> tuple[str, int]:
    try:
        info = os.lstat(path)
    except OSError:
        return "is missing", 0
    if not isinstance(expected, dict):
        return "has a malformed entry in the record", 0
    if "link" in expected:
        if not stat.S_ISLNK(info.st_mode) or os.readlink(path) != expected["link"]:
            return "is no longer the link it was", 0
        return "", 0
    if not stat.S_ISREG(info.st_mode):
        return "is no longer a regular file", 0
    if info.st_size != expected.get("size"):
        return f"changed size ({expected.get('size')} -> {info.st_size} bytes)", 0
    try:
        digest = digest_file(path, info.st_size)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})", 0
    if digest != expected.get("xxh3"):
        return "changed content (digest mismatch)", info.st_size
    return "", info.st_size
