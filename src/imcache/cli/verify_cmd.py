"""`imcache verify [--fix] [--dry-run] [--json]`: check every entry against its record's digests."""

from __future__ import annotations

import click

from imcache.cli.common import count, say
from imcache.cli.options import emit_json, entry_json, human_bytes, json_option, pass_store
from imcache.core.errors import ImcacheError
from imcache.core.store import Store
from imcache.core.verify import Finding, VerifyReport, verify


@click.command("verify")
@click.option("--fix", is_flag=True, help="Remove damaged entries (their next run redoes them).")
@click.option("--dry-run", is_flag=True, help="With --fix: show what would go; remove nothing.")
@json_option()
@pass_store
def verify_cmd(store: Store, fix: bool, dry_run: bool, as_json: bool) -> None:
    """Read every entry's files and compare them with the digests in its record.

    Exits 0 when no damaged entry remains, 1 when some do (or would, with --dry-run).
    """
    report = verify(store, fix=fix, dry_run=dry_run)
    if as_json:
        emit_json(_report_json(report))
    else:
        _render(report)
    if report.remaining:
        raise ImcacheError(
            f"{count(len(report.remaining), 'damaged entry remains', 'damaged entries remain')} "
            "in the cache",
            "run 'imcache verify --fix' to remove them"
            if not fix or dry_run
            else "they are in use or another user's; try again later",
        )


def _render(report: VerifyReport) -> None:
    removed = {id(f) for f in report.removed}
    for finding in report.damaged:
        entry = finding.entry
        if id(finding) in removed:
            state = "removed"
        elif report.fix and report.dry_run:
            state = "would remove"
        else:
            state = "damaged"
        click.echo(f"{state} {entry.interface} {entry.key[:12]}: {finding.problem}")
    for finding in report.in_use:
        say(f"kept {finding.entry.interface} {finding.entry.key[:12]}: in use by another process")
    for finding in report.not_yours:
        say(f"kept {finding.entry.interface} {finding.entry.key[:12]}: another user's entry")
    say(
        f"checked {count(report.checked, 'entry', 'entries')} "
        f"({human_bytes(report.bytes_read)} read): "
        f"{len(report.damaged)} damaged, {len(report.removed)} removed"
    )


def _finding_json(finding: Finding) -> dict[str, object]:
    return {**entry_json(finding.entry), "problem": finding.problem}


def _report_json(report: VerifyReport) -> dict[str, object]:
    return {
        "checked": report.checked,
        "bytes_read": report.bytes_read,
        "fix": report.fix,
        "dry_run": report.dry_run,
        "damaged": [_finding_json(f) for f in report.damaged],
        "removed": [_finding_json(f) for f in report.removed],
        "in_use": [_finding_json(f) for f in report.in_use],
        "not_yours": [_finding_json(f) for f in report.not_yours],
    }
