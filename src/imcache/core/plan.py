"""Planning a run: resolve the interface, check the values, find the tool and compute the key.

Everything here is on the hit path (a hit is a plan and a look-up): keep its imports lean.
"""

from __future__ import annotations

import os

from imcache.core.datatype import datatype, replace
from imcache.core.errors import UsageError
from imcache.core.hashing import DigestMemo, Progress, Reader, Seen, digest_file
from imcache.core.interfaces.arguments import given_values, parse_words
from imcache.core.interfaces.model import FileArg, Interface, SubArg, Values
from imcache.core.interfaces.registry import resolve, search_path
from imcache.core.interfaces.render import PlannedOutput, plan_outputs, render_argv
from imcache.core.interfaces.values import PYTHON_NAMES, relevant_env, resolve_values
from imcache.core.keystream import KEY_FORMAT, KeyStream
from imcache.core.layout import MEMO_FOLDER, cache_root
from imcache.core.store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


@datatype
class RunRequest:
    """What either face asks of the core: the CLI gives `words`, the Python face `values`."""

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
    depends: tuple[str, ...] = ()  # `--depends PATH`: files in the key, never on the command line
    read_only: bool = False  # `imcache explain`: the digest memo is read, never written
    values: Mapping[str, object] | None = None  # Python keyword values, instead of `words`
    # Keep a shared lock on the entry until the process exits, so that a concurrent `clear`
    # cannot remove what it prints: right for a short CLI process, wrong for a notebook.
    hold: bool = True
    definition: Interface | None = None  # `interface` already resolved (the Python face's memo)
    memo_only: bool = False  # a memo miss raises NotMemoised instead of hashing (fast.py)


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
    key_items: dict[str, Any]  # the same fields as JSON, kept in the record for `explain`
    store: Store
    seen: Seen  # the signature of every input file as hashed, to tell if one changes

    @property
    def entry(self) -> str:
        return self.store.entry_dir(self.interface.name, self.key)


def plan_run(request: RunRequest) -> Plan:
    interface = request.definition or resolve(
        request.interface, search_path(request.catalogues, request.env)
    )
    env, cwd = request.env, request.cwd
    if request.values is None:
        values = resolve_values(interface, parse_words(interface, request.words), env, cwd)
    else:
        raw = given_values(interface, request.values)
        values = resolve_values(interface, raw, env, cwd, names=PYTHON_NAMES)
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
    memo = DigestMemo(os.path.join(store.root, MEMO_FOLDER), read_only=request.read_only)
    reader = Reader(memo, request.progress, request.memo_only)
    depends = _depends(request)
    if interface.extension.companions:
        from imcache.core.companions import declared

        reader.declared = declared(interface.extension.companions, values)
    reader.read_ahead([*_file_paths(list(values.values())), *depends])
    configs = {out.spec.id: out.content for out in outputs if out.content is not None}
    stream = key_stream(interface, tool, values, env_values, reader, configs, depends)
    return Plan(
        interface=interface,
        values=values,
        env_values=env_values,
        tool=tool,
        argv=argv,
        outputs=outputs,
        key=stream.digest(),
        key_lines=stream.lines,
        key_items=stream.items,
        store=store,
        seen=reader.seen,
    )


def _depends(request: RunRequest) -> list[str]:
    """`--depends` paths, absolute and sorted (their order means nothing); each must exist."""
    paths = sorted({os.path.normpath(os.path.join(request.cwd, p)) for p in request.depends})
    for path in paths:
        if not os.path.exists(path):
            raise UsageError(
                f"--depends {path!r}: no such file or folder",
                "name a file that the tool reads by itself, and that exists",
            )
    return paths


def complete_plan(plan: Plan) -> Plan:
    """A nipype interface's argv (and the environment it sets) is nipype's own, asked only when
    a run needs it (a miss, a dry run): a hit never imports nipype."""
    if not plan.interface.extension.nipype_class:
        return plan
    from imcache.core.interfaces.nipype_render import nipype_argv

    argv, env_values = nipype_argv(plan.interface, plan.values, plan.env_values)
    return replace(plan, argv=argv, env_values=env_values)


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
    path = which(name, env)
    if path is None:
        return Tool(name, None, "not found")
    real = os.path.realpath(path)
    info = os.stat(real)
    if interface.extension.tool_check == "content":
        return Tool(name, path, f"{real} xxh3:{digest_file(real)}")
    return Tool(name, path, f"{real} size={info.st_size} mtime_ns={info.st_mtime_ns}")


def which(name: str, env: Mapping[str, str]) -> str | None:
    """The program a run of `name` would start, looked up on env's PATH (`os.defpath` if unset).

    `shutil.which` for POSIX, without importing shutil (and its compressors) on a hit. One
    difference, kept on purpose: an empty PATH names the current folder, as an empty element of
    PATH does and as execvp reads it, where `shutil.which` finds nothing.
    """
    folders = [""] if os.sep in name else env.get("PATH", os.defpath).split(os.pathsep)
    for folder in folders:
        candidate = os.path.join(folder, name)
        try:
            if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
                return candidate
        except (UnicodeEncodeError, ValueError):  # no file name (a lone surrogate, a NUL)
            return None
    return None


def key_stream(
    interface: Interface,
    tool: Tool,
    values: Values,
    env_values: Mapping[str, str],
    reader: Reader | None = None,
    configs: Mapping[str, str] | None = None,
    depends: Sequence[str] = (),
) -> KeyStream:
    stream = KeyStream(reader=reader or Reader())
    stream.add_text("key-format", str(KEY_FORMAT))
    stream.add_text("interface", interface.name)
    stream.add_text("definition", interface.digest)
    stream.add_text("tool", tool.identity)
    for input_id in sorted(values):
        stream.add_value(f"input.{input_id}", values[input_id])
    if depends:  # by name and content, as inputs: a run without any keeps its old key
        stream.add_value("depends", [FileArg(given=path, path=path) for path in depends])
    for name in sorted(env_values):
        stream.add_text(f"env.{name}", env_values[name])
    # A configuration file names input files by their absolute paths (as bosh writes it): it is
    # an output of the run, so the same data elsewhere must not hand back this one's text.
    for output_id, text in sorted((configs or {}).items()):
        stream.add_text(f"config.{output_id}", text)
    return stream
