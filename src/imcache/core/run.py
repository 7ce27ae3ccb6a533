"""`imcache run`: hand back a complete entry for the plan's key, or run the tool once.

The locking protocol: look up under a shared lock (a hit, kept until we exit so that `clear`
cannot pull it away, unless the request says not to hold it); else take the entry's lock, look
again, run, check, publish. The locks only spare duplicate work: the tool runs in a private folder
(`<key>.run-<host>-<pid>`) that is renamed onto the key once complete, first one wins, so that
where locks are not shared (two hosts) a loser hands back the winner's entry, never a mixed one.
Planning the key is core/plan.py; what a miss leaves in the entry (outputs, record) is
core/outputs.py.
"""

from __future__ import annotations

import os

from imcache.core.datatype import datatype, field, replace
from imcache.core.entry import is_value, output_damage
from imcache.core.errors import (
    CacheError,
    OutputsMissingError,
    OutputStillWrittenError,
    TerminatedError,
    ToolFailedError,
    ToolNotFoundError,
)
from imcache.core.files import suppress
from imcache.core.hashing import DigestMemo, file_digests
from imcache.core.layout import MEMO_FOLDER, RECORD, STDERR_LOG, USED_MARK
from imcache.core.lock import EntryLock
from imcache.core.plan import Plan, RunRequest, complete_plan, plan_run
from imcache.core.store import cache_errors

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, BinaryIO, Protocol

OutputPaths = dict[str, str | list[str]]


@datatype
class RunResult:
    plan: Plan
    cached: bool
    outputs: OutputPaths  # output name -> absolute path (list outputs: a list)
    extra_files: list[str] = field(default_factory=list)
    exit_code: int = 0
    seconds: float | None = None
    values: dict[str, Any] = field(default_factory=dict)  # outputs that are values, not files
    remote_bytes: int | None = None  # fetched from the remote tier: how many bytes


if TYPE_CHECKING:  # a protocol for mypy only: typing stays off the hit path

    class Reporter(Protocol):
        """What the face hears while a run goes on; the core itself never prints."""

        echo: BinaryIO | None

        def waiting(self, plan: Plan) -> None: ...
        def running(self, plan: Plan) -> None: ...
        def warning(self, message: str) -> None: ...


def look_up(plan: Plan, reporter: Reporter | None = None) -> RunResult | None:
    """A complete, intact entry for this plan's key, or None (a damaged one is reported)."""
    record, damage = plan.store.check_record(plan.entry)
    if record is not None and record.get("key") != plan.key:
        record, damage = None, "its record is for another key"
    if record is not None:
        memo = DigestMemo(os.path.join(plan.store.root, MEMO_FOLDER))
        damage = output_damage(plan.entry, record, memo)
    if damage:
        if reporter is not None:
            reporter.warning(
                f"entry {plan.key[:12]} of {plan.interface.name} is damaged "
                f"({damage}); running again"
            )
        return None
    if record is None:
        return None
    if plan.interface.extension.nipype_class:  # nipype's argv, as the miss recorded it
        plan = replace(plan, argv=list(record.get("argv", plan.argv)))
    return RunResult(
        plan=plan,
        cached=True,
        outputs=_absolute(plan.entry, record.get("outputs", {})),
        extra_files=[os.path.join(plan.entry, p) for p in record.get("extra_files", [])],
        seconds=record.get("seconds"),
        values=_values(record.get("outputs", {})),
    )


def run(request: RunRequest, reporter: Reporter) -> RunResult:
    plan = plan_run(request)
    plan.store.refuse_link()
    if not request.force:
        hit = _shared_hit(plan, reporter, request.hold)
        if hit is not None:
            return hit
    plan = complete_plan(plan)
    if plan.tool.path is None:
        raise ToolNotFoundError(
            f"{plan.tool.name!r} (run by {plan.interface.name}) is not on PATH",
            "install it or add its folder to PATH",
        )
    plan.store.ensure(plan.interface.name)
    lock = EntryLock(plan.store.lock_path(plan.interface.name, plan.key))
    if not lock.acquire(exclusive=True, on_wait=lambda: reporter.waiting(plan)):
        raise CacheError(
            f"cannot lock {lock.path}", "choose a writable --base-dir (or IMCACHE_BASE_DIR)"
        )
    try:
        if request.force and lock.only_shared:
            raise CacheError(
                f"--force would replace {plan.entry} without knowing whether another process "
                f"uses it: its lock file {lock.path} is not writable for you",
                "ask its owner to make it group-writable (chmod g+w), or run without --force",
            )
        # Lock, then look again: another process may have finished this key meanwhile.
        hit = None if request.force else look_up(plan, reporter)
        if hit is None and not request.force:
            hit = _from_remote(plan, request.env, reporter)
        if hit is None:
            try:
                ran = _execute(plan, request.env, reporter, replace=request.force)
                hit = _to_remote(ran, request, reporter)
            except CacheError as exc:
                from imcache.core.refusals import say_what_failures_take

                say_what_failures_take(plan, exc)
                raise
        elif hit.remote_bytes is None:
            _used(plan, "hit")
        if request.hold:
            lock.hold_until_exit()
        return hit
    finally:
        lock.release()


def hit_only(
    request: RunRequest, reporter: Reporter, accept: Callable[[RunResult], bool]
) -> RunResult | None:
    """`run` when it is a hit that `accept` takes; else None, having changed nothing: neither
    the last use nor the events log (the hit without click then hands over to `run`)."""
    plan = plan_run(request)
    plan.store.refuse_link()
    return _shared_hit(plan, reporter, request.hold, accept)


def _shared_hit(
    plan: Plan,
    reporter: Reporter,
    hold: bool,
    accept: Callable[[RunResult], bool] = lambda _: True,
) -> RunResult | None:
    """A hit under a shared lock: kept until we exit if `hold`, so that `clear` cannot pull it
    away; else let go once the hit is noted (what the caller holds is then unprotected)."""
    # A stat, not a read: the record is read once, below, under the lock. No record, no lock
    # file made for a miss here; a damaged entry is reported once, under the run's lock.
    if not os.path.exists(os.path.join(plan.entry, RECORD)):
        return None
    lock = EntryLock(plan.store.lock_path(plan.interface.name, plan.key))
    if not lock.acquire(exclusive=False, on_wait=lambda: reporter.waiting(plan)):
        return None
    hit = look_up(plan)
    if hit is None or not accept(hit):
        lock.release()
        return None
    _used(plan, "hit")
    if hold:
        lock.hold_until_exit()
    else:
        lock.release()
    return hit


def _from_remote(plan: Plan, env: Mapping[str, str], reporter: Reporter) -> RunResult | None:
    """A local miss: the remote tier's entry for this key, fetched into the local cache."""
    if not env.get("IMCACHE_REMOTE"):
        return None
    from imcache.core.remote.flow import fetch_for_run  # a miss with a remote only

    fetched = fetch_for_run(plan.store, plan.interface.name, plan.key, env, reporter.warning)
    hit = look_up(plan, reporter) if fetched is not None else None
    if hit is None or fetched is None:
        return None
    plan.store.touch_used_mark(plan.entry)
    return replace(hit, remote_bytes=fetched.bytes)


def _to_remote(ran: RunResult, request: RunRequest, reporter: Reporter) -> RunResult:
    """After a run: push it. If another publisher won the key meanwhile, theirs is the result
    (unless --force asked for this run's own)."""
    if not request.env.get("IMCACHE_REMOTE"):
        return ran
    from imcache.core.remote.flow import push_for_run  # a run with a remote only

    plan = ran.plan
    adopted = push_for_run(
        plan.store,
        plan.interface.name,
        plan.key,
        request.env,
        reporter.warning,
        adopt=not request.force,
    )
    hit = look_up(plan, reporter) if adopted is not None else None
    if hit is None or adopted is None:
        return ran
    # The winner's entry, but this run ran: not cached, and its own time.
    return replace(hit, cached=False, seconds=ran.seconds, remote_bytes=adopted.bytes)


def _used(plan: Plan, event: str) -> None:
    plan.store.touch_used_mark(plan.entry)
    plan.store.log_event(event, plan.interface.name, plan.key)


def _execute(plan: Plan, env: Mapping[str, str], reporter: Reporter, replace: bool) -> RunResult:
    """Run the tool in a private folder and publish it as the entry; another process's entry
    published first is the result instead (`replace`, --force, makes ours the entry anyway)."""
    with cache_errors(plan.store.root):
        # --force: the entry goes first, as it always has (a run killed now leaves no entry).
        attempt = plan.store.prepare_run(plan.interface.name, plan.key, replace=replace)
    # A miss only: a hit neither writes outputs nor starts a process.
    from imcache.core.outputs import (
        build_record,
        extra_files,
        outputs_of,
        stamp_signatures,
        write_config_files,
    )
    from imcache.core.process import run_tool
    from imcache.core.refusals import (
        failure,
        last_lines,
        refuse_changed_inputs,
        refuse_links_out,
        refuse_still_written,
    )

    # Configuration files and argv name outputs relative to the folder the tool runs in (and
    # inputs by absolute paths), so nothing in them names the private folder once it is renamed.
    write_config_files(plan, attempt)
    reporter.running(plan)
    tool_env = {**env, **plan.interface.fixed_env, **plan.env_values}
    assert plan.tool.path is not None
    argv = [plan.tool.path, *plan.argv[1:]]
    try:
        completed = run_tool(argv, attempt, tool_env, reporter.echo, plan.interface.name)
    except (CacheError, TerminatedError, KeyboardInterrupt):
        # Its logs could not be written, or we were stopped: no entry, an attempt kept aside.
        with suppress(OSError):
            plan.store.keep_failed(attempt)
        raise
    plan.store.log_event(
        "miss" if completed.exit_code == 0 else "fail", plan.interface.name, plan.key
    )
    if completed.exit_code != 0:
        kept = plan.store.keep_failed(attempt)
        raise ToolFailedError(
            f"{plan.tool.name} ({plan.interface.name}) {failure(completed.exit_code)}",
            f"its logs are kept in {kept}",
            completed.exit_code,
            kept_dir=kept,
            stderr_tail=last_lines(os.path.join(kept, STDERR_LOG)),
        )
    refuse_changed_inputs(plan, attempt)
    outputs, missing = outputs_of(plan, attempt)
    if missing:
        kept = plan.store.keep_failed(attempt)
        raise OutputsMissingError(
            f"{plan.tool.name} ({plan.interface.name}) exited 0 but did not write "
            + ", ".join(missing),
            f"nothing was cached; see the logs in {kept}",
        )
    refuse_links_out(plan, attempt, outputs)
    extra = extra_files(attempt, outputs)
    record = build_record(plan, completed.started, completed.seconds, outputs, extra)
    try:
        with cache_errors(attempt):
            plan.store.open_to_group(attempt)  # first: a chmod would move the signatures
            stamp_signatures(attempt, outputs)  # before the digests: a writer moves them
            record["files"] = file_digests(attempt, skip=frozenset({RECORD, USED_MARK}))
            plan.store.publish(
                attempt, record, lambda: refuse_still_written(plan, attempt, outputs)
            )
            won = plan.store.place_entry(attempt, plan.entry, replace=replace)
    except (CacheError, OutputStillWrittenError):
        # A full disk while publishing, or a writer the tool left behind: the attempt goes
        # aside, never half an entry.
        with suppress(OSError):
            plan.store.keep_failed(attempt)
        raise
    if not won:
        return _winner(plan, completed.seconds)
    return RunResult(
        plan=plan,
        cached=False,
        outputs=_absolute(plan.entry, outputs),
        extra_files=[os.path.join(plan.entry, p) for p in extra],
        seconds=completed.seconds,
        values=_values(outputs),
    )


def _winner(plan: Plan, seconds: float) -> RunResult:
    """Another process published this key first (its lock not shared with ours, or locking
    off): its entry is the result, so that every caller gets the same bytes; this run ran."""
    hit = look_up(plan)
    if hit is None:
        raise CacheError(
            f"entry {plan.entry} was removed while this run published it",
            "run again (a 'clear' of the same cache ran meanwhile)",
        )
    return replace(hit, cached=False, seconds=seconds)


def _absolute(entry: str, outputs: dict[str, Any]) -> OutputPaths:
    result: OutputPaths = {}
    for name, value in outputs.items():
        if is_value(value):
            continue
        if isinstance(value, list):
            result[name] = [os.path.join(entry, _path_of(i)) for i in value]
        else:
            result[name] = os.path.join(entry, _path_of(value))
    return result


def _values(outputs: dict[str, Any]) -> dict[str, Any]:
    return {name: item["value"] for name, item in outputs.items() if is_value(item)}


def _path_of(item: Any) -> str:
    return str(item["path"] if isinstance(item, dict) else item)
