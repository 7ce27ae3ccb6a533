"""`imcache run`: resolve, check, key, then hand back a complete entry or run the tool once."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, Protocol

from imcache import __version__
from imcache.core.datatype import datatype, field
from imcache.core.entry import output_damage
from imcache.core.errors import (
    CacheError,
    InputChangedError,
    OutputsMissingError,
    ToolFailedError,
    ToolNotFoundError,
    UsageError,
)
from imcache.core.hashing import (
    KEY_FORMAT,
    DigestMemo,
    KeyStream,
    Progress,
    Reader,
    Seen,
    changed_since,
    digest_file,
    file_digests,
)
from imcache.core.interfaces.arguments import parse_words
from imcache.core.interfaces.model import FileArg, Interface, SubArg, Values
from imcache.core.interfaces.registry import resolve, search_path
from imcache.core.interfaces.render import PlannedOutput, plan_outputs, render_argv
from imcache.core.interfaces.values import relevant_env, resolve_values
from imcache.core.layout import LAYOUT, MEMO_FOLDER, OWN_FILES, RECORD, USED_MARK, cache_root
from imcache.core.lock import EntryLock
from imcache.core.store import Store, cache_errors

OutputPaths = dict[str, str | list[str]]


@datatype
class RunRequest:
    interface: str
    words: list[str]
    base_dir: str
    cwd: str
    env: Mapping[str, str]
    catalogues: Sequence[str] = ()
    force: bool = False
    wanted_output: str | None = None  # `--get NAME`: checked before anything runs
    exported: tuple[str, ...] = ()  # `--export NAME=PATH` names: checked before anything runs
    progress: Progress | None = None  # told of input bytes hashed (the memo's misses)


@datatype
class Tool:
    name: str
    path: str | None  # None: not found on PATH
    identity: str


@datatype
class Plan:
    interface: Interface
    values: Values
    env_values: dict[str, str]
    tool: Tool
    argv: list[str]
    outputs: list[PlannedOutput]
    key: str
    key_lines: list[str]
    store: Store
    seen: Seen  # the signature of every input file as hashed, to tell if one changes

    @property
    def entry(self) -> str:
        return self.store.entry_dir(self.interface.name, self.key)


@datatype
class RunResult:
    plan: Plan
    cached: bool
    outputs: OutputPaths  # output name -> absolute path (list outputs: a list)
    extra_files: list[str] = field(default_factory=list)
    exit_code: int = 0
    seconds: float | None = None


class Reporter(Protocol):
    """What the face hears while a run goes on; the core itself never prints."""

    echo: BinaryIO | None

    def waiting(self, plan: Plan) -> None: ...
    def running(self, plan: Plan) -> None: ...
    def warning(self, message: str) -> None: ...


def plan_run(request: RunRequest) -> Plan:
    interface = resolve(request.interface, search_path(request.catalogues, request.env))
    raw = parse_words(interface, request.words)
    values = resolve_values(interface, raw, request.env, request.cwd)
    env_values = relevant_env(interface, request.env)
    outputs = plan_outputs(interface, values, env_values)
    for wanted in (request.wanted_output, *request.exported):
        if wanted is not None:
            _check_wanted(interface, wanted)
    overrides = {
        input_id: text
        for rule in interface.extension.rules
        if rule.if_set in values
        for input_id, text in rule.render.items()
    }
    argv = render_argv(interface, values, outputs, overrides)
    tool = find_tool(interface, request.env)
    store = Store(cache_root(request.base_dir))
    reader = Reader(DigestMemo(os.path.join(store.root, MEMO_FOLDER)), request.progress)
    reader.read_ahead(_file_paths(list(values.values())))
    configs = {out.spec.id: out.content for out in outputs if out.content is not None}
    stream = key_stream(interface, tool, values, env_values, reader, configs)
    return Plan(
        interface=interface,
        values=values,
        env_values=env_values,
        tool=tool,
        argv=argv,
        outputs=outputs,
        key=stream.digest(),
        key_lines=stream.lines,
        store=store,
        seen=reader.seen,
    )


def _file_paths(values: list[Any]) -> list[str]:
    """Every input file among values (lists and sub-command values included)."""
    paths: list[str] = []
    for value in values:
        if isinstance(value, FileArg):
            paths.append(value.path)
        elif isinstance(value, list):
            paths += _file_paths(value)
        elif isinstance(value, SubArg):
            paths += _file_paths(list(value.values.values()))
    return paths


def _check_wanted(interface: Interface, wanted: str) -> None:
    declared = [out.label for out in interface.outputs]
    declared += [s.label for s in (interface.stdout_output, interface.stderr_output) if s]
    if wanted not in declared:
        raise UsageError(
            f"{interface.name} has no output {wanted!r}",
            f"its outputs are: {', '.join(declared) or 'none'}",
        )


def find_tool(interface: Interface, env: Mapping[str, str]) -> Tool:
    name = interface.executable
    path = which(name, env.get("PATH", os.defpath))
    if path is None:
        return Tool(name, None, "not found")
    real = os.path.realpath(path)
    info = os.stat(real)
    if interface.extension.tool_check == "content":
        return Tool(name, path, f"{real} xxh3:{digest_file(real)}")
    return Tool(name, path, f"{real} size={info.st_size} mtime_ns={info.st_mtime_ns}")


def which(name: str, search: str) -> str | None:
    """`shutil.which` for POSIX, without importing shutil (and its compressors) on a hit."""
    folders = [""] if os.sep in name else search.split(os.pathsep)
    for folder in folders:
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def key_stream(
    interface: Interface,
    tool: Tool,
    values: Values,
    env_values: Mapping[str, str],
    reader: Reader | None = None,
    configs: Mapping[str, str] | None = None,
) -> KeyStream:
    stream = KeyStream(reader=reader or Reader())
    stream.add_text("key-format", str(KEY_FORMAT))
    stream.add_text("interface", interface.name)
    stream.add_text("definition", interface.digest)
    stream.add_text("tool", tool.identity)
    for input_id in sorted(values):
        stream.add_value(f"input.{input_id}", values[input_id])
    for name in sorted(env_values):
        stream.add_text(f"env.{name}", env_values[name])
    # A configuration file names input files by their absolute paths (as bosh writes it): it is
    # an output of the run, so the same data elsewhere must not hand back this one's text.
    for output_id, text in sorted((configs or {}).items()):
        stream.add_text(f"config.{output_id}", text)
    return stream


def look_up(plan: Plan, reporter: Reporter | None = None) -> RunResult | None:
    """A complete, intact entry for this plan's key, or None (a damaged one is reported)."""
    record, damage = plan.store.check_record(plan.entry)
    if record is not None and record.get("key") != plan.key:
        record, damage = None, "its record is for another key"
    if record is not None:
        damage = output_damage(plan.entry, record)
    if damage:
        if reporter is not None:
            reporter.warning(
                f"entry {plan.key[:12]} of {plan.interface.name} is damaged "
                f"({damage}); running again"
            )
        return None
    if record is None:
        return None
    return RunResult(
        plan=plan,
        cached=True,
        outputs=_absolute(plan.entry, record.get("outputs", {})),
        extra_files=[os.path.join(plan.entry, p) for p in record.get("extra_files", [])],
        seconds=record.get("seconds"),
    )


def run(request: RunRequest, reporter: Reporter) -> RunResult:
    plan = plan_run(request)
    plan.store.refuse_link()
    if not request.force:
        hit = _shared_hit(plan, reporter)
        if hit is not None:
            return hit
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
        # Lock, then look again: another process may have finished this key meanwhile.
        hit = None if request.force else look_up(plan, reporter)
        if hit is None:
            hit = _execute(plan, request.env, reporter)
        else:
            _used(plan, "hit")
        lock.hold_until_exit()
        return hit
    finally:
        lock.release()


def _shared_hit(plan: Plan, reporter: Reporter) -> RunResult | None:
    """A hit under a shared lock, kept until we exit, so that `clear` cannot pull it away."""
    # A stat, not a read: the record is read once, below, under the lock. No record, no lock
    # file made for a miss here; a damaged entry is reported once, under the run's lock.
    if not os.path.exists(os.path.join(plan.entry, RECORD)):
        return None
    lock = EntryLock(plan.store.lock_path(plan.interface.name, plan.key))
    if not lock.acquire(exclusive=False, on_wait=lambda: reporter.waiting(plan)):
        return None
    hit = look_up(plan)
    if hit is None:
        lock.release()
        return None
    _used(plan, "hit")
    lock.hold_until_exit()
    return hit


def _used(plan: Plan, event: str) -> None:
    plan.store.touch_used_mark(plan.entry)
    plan.store.log_event(event, plan.interface.name, plan.key)


def _execute(plan: Plan, env: Mapping[str, str], reporter: Reporter) -> RunResult:
    with cache_errors(plan.store.root):
        entry = plan.store.prepare_entry(plan.interface.name, plan.key)
    _write_config_files(plan, entry)
    reporter.running(plan)
    tool_env = {**env, **plan.interface.fixed_env, **plan.env_values}
    assert plan.tool.path is not None
    argv = [plan.tool.path, *plan.argv[1:]]
    from imcache.core.process import run_tool  # a miss only: a hit never starts a process

    try:
        completed = run_tool(argv, entry, tool_env, reporter.echo, plan.interface.name)
    except CacheError:
        with contextlib.suppress(OSError):
            plan.store.keep_failed(entry)  # its logs could not be written: no entry at all
        raise
    plan.store.log_event(
        "miss" if completed.exit_code == 0 else "fail", plan.interface.name, plan.key
    )
    if completed.exit_code != 0:
        kept = plan.store.keep_failed(entry)
        raise ToolFailedError(
            f"{plan.tool.name} ({plan.interface.name}) failed with exit code {completed.exit_code}",
            f"its logs are kept in {kept}",
            completed.exit_code,
        )
    _refuse_changed_inputs(plan, entry)
    outputs, missing = _collect(entry, plan.outputs)
    if missing:
        kept = plan.store.keep_failed(entry)
        raise OutputsMissingError(
            f"{plan.tool.name} ({plan.interface.name}) exited 0 but did not write "
            + ", ".join(missing),
            f"nothing was cached; see the logs in {kept}",
        )
    extra = _extra_files(entry, outputs)
    record = _record(plan, completed.started, completed.seconds, outputs, extra)
    try:
        with cache_errors(entry):
            record["files"] = file_digests(entry, skip=frozenset({RECORD, USED_MARK}))
            plan.store.publish(entry, record)
    except CacheError:
        # A full disk while publishing: the attempt goes aside, never half an entry.
        with contextlib.suppress(OSError):
            plan.store.keep_failed(entry)
        raise
    return RunResult(
        plan=plan,
        cached=False,
        outputs=_absolute(entry, outputs),
        extra_files=[os.path.join(entry, p) for p in extra],
        seconds=completed.seconds,
    )


def _write_config_files(plan: Plan, entry: str) -> None:
    """The files that the definition's file-templates describe, before the tool reads them.
    An attempt that fails here goes aside, as any failed attempt does."""
    for out in plan.outputs:
        if out.content is None:
            continue
        path = os.path.join(entry, out.path)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(out.content)
        except OSError as exc:
            import errno  # a failed write only

            with contextlib.suppress(OSError):
                plan.store.keep_failed(entry)
            if exc.errno in (errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise UsageError(
                    f"{plan.interface.name}: cannot write the configuration file "
                    f"{out.spec.label} at {out.path!r} ({exc.strerror})",
                    "check the values that name it, or the definition's path-template",
                ) from None
            with cache_errors(entry):
                raise


def _refuse_changed_inputs(plan: Plan, entry: str) -> None:
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


def _collect(entry: str, planned: list[PlannedOutput]) -> tuple[dict[str, Any], list[str]]:
    """Declared outputs as {name: {path, size}} (a list for list outputs), and what is missing."""
    found: dict[str, Any] = {}
    missing = []
    for out in planned:
        if out.spec.is_list:
            import glob  # list outputs only

            matches = sorted(glob.glob(out.path, root_dir=entry))
            found[out.spec.label] = [_describe(entry, m) for m in matches]
            if not matches and not out.spec.optional:
                missing.append(f"{out.spec.label} ({out.path})")
        elif os.path.lexists(os.path.join(entry, out.path)):
            found[out.spec.label] = _describe(entry, out.path)
        elif not out.spec.optional:
            missing.append(f"{out.spec.label} ({out.path})")
    return found, missing


def _describe(entry: str, relative: str) -> dict[str, Any]:
    info = os.lstat(os.path.join(entry, relative))
    size = info.st_size if stat.S_ISREG(info.st_mode) else None
    return {"path": os.path.normpath(relative), "size": size}


def _extra_files(entry: str, outputs: dict[str, Any]) -> list[str]:
    """Files the tool wrote that no template names: kept and listed, never silently dropped."""
    declared = set()
    for value in outputs.values():
        for item in value if isinstance(value, list) else [value]:
            declared.add(item["path"])
    extra = []
    for folder, dirs, files in os.walk(entry):
        relative_folder = os.path.relpath(folder, entry)
        if relative_folder in declared:
            dirs.clear()
            continue
        for name in files:
            relative = os.path.normpath(os.path.join(relative_folder, name))
            if relative not in declared and relative not in OWN_FILES:
                extra.append(relative)
    return sorted(extra)


def _absolute(entry: str, outputs: dict[str, Any]) -> OutputPaths:
    result: OutputPaths = {}
    for name, value in outputs.items():
        if isinstance(value, list):
            result[name] = [os.path.join(entry, _path_of(i)) for i in value]
        else:
            result[name] = os.path.join(entry, _path_of(value))
    return result


def _path_of(item: Any) -> str:
    return str(item["path"] if isinstance(item, dict) else item)


def _record(
    plan: Plan, started: float, seconds: float, outputs: dict[str, Any], extra: list[str]
) -> dict[str, Any]:
    return {
        "layout": LAYOUT,
        "key": plan.key,
        "key_format": KEY_FORMAT,
        "key_fields": plan.key_lines,
        "interface": plan.interface.name,
        "definition": {"source": plan.interface.source, "digest": plan.interface.digest},
        "tool": {"name": plan.tool.name, "path": plan.tool.path, "identity": plan.tool.identity},
        "argv": plan.argv,
        "env": plan.env_values,
        "outputs": outputs,
        "extra_files": extra,
        "exit_code": 0,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(seconds, 6),
        "imcache_version": __version__,
    }
