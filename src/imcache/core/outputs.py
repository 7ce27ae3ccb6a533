"""What a miss leaves in its entry: the configuration files written before the tool runs, the
outputs collected after it ran, the files no template names, and the record that lists them.

Only a miss imports this module (`run` imports it when it is about to start the tool).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from typing import Any

from imcache import __version__
from imcache.core.entry import is_value, output_signature
from imcache.core.errors import UsageError
from imcache.core.interfaces.render import PlannedOutput
from imcache.core.keystream import KEY_FORMAT
from imcache.core.layout import LAYOUT, OWN_FILES
from imcache.core.plan import Plan
from imcache.core.store import cache_errors


def write_config_files(plan: Plan, entry: str) -> None:
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


def outputs_of(plan: Plan, entry: str) -> tuple[dict[str, Any], list[str]]:
    """The planned outputs, or for a nipype interface those nipype's output listing names."""
    if not plan.interface.extension.nipype_class:
        return collect_outputs(entry, plan.outputs)
    from imcache.core.interfaces.nipype_render import nipype_outputs
    from imcache.core.layout import STDOUT_LOG

    with open(os.path.join(entry, STDOUT_LOG), encoding="utf-8", errors="replace") as handle:
        stdout = handle.read()
    return nipype_outputs(plan.interface, plan.values, plan.env_values, entry, stdout)


def collect_outputs(entry: str, planned: list[PlannedOutput]) -> tuple[dict[str, Any], list[str]]:
    """Declared outputs as {name: {path, size}} (a list for list outputs), and what is missing."""
    found: dict[str, Any] = {}
    missing = []
    for out in planned:
        if out.spec.is_list:
            import glob  # list outputs only

            # Never our own files: a `*.txt` would otherwise hand back stdout.txt as the tool's.
            every = sorted(glob.glob(out.path, root_dir=entry))
            matches = [m for m in every if os.path.normpath(m) not in OWN_FILES]
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


def output_items(outputs: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(output name, item) for every collected output file, list outputs item by item (value
    outputs, nipype's numbers and lists, are no files and are left out)."""
    return [
        (name, item)
        for name, value in outputs.items()
        if not is_value(value)
        for item in (value if isinstance(value, list) else [value])
    ]


def links_out(entry: str, outputs: dict[str, Any]) -> list[str]:
    """Outputs that resolve outside the entry (a link, or a path through a linked folder): the
    cache would hand back a file it does not hold, and `--export` would chmod it."""
    real_entry = os.path.realpath(entry)
    found = []
    for name, item in output_items(outputs):
        real = os.path.realpath(os.path.join(entry, item["path"]))
        inside = real == real_entry or real.startswith(real_entry + os.sep)
        if not inside or _link_leaves(entry, item["path"]):
            found.append(f"{name} ({item['path']} -> {real})")
    return found


def _link_leaves(entry: str, relative: str) -> bool:
    """A link on the way to an output that leaves the folder the tool ran in by its text (an
    absolute path, or `..` above the folder), even one that comes back in through the folder's
    own name: that private folder is gone once it is renamed onto the entry. Resolved here
    link by link, as the kernel will resolve it in the entry."""
    todo = relative.split("/")
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                return True
            done.pop()
            continue
        done.append(part)
        path = os.path.join(entry, *done)
        if os.path.islink(path):
            target = os.readlink(path)
            hops += 1
            if os.path.isabs(target) or hops > 40:  # 40: the kernel's own limit
                return True
            done.pop()
            todo = target.split("/") + todo
    return False


def stamp_signatures(entry: str, outputs: dict[str, Any]) -> None:
    """Each output file's signature, taken before its digest: what a hit compares by one stat."""
    for _name, item in output_items(outputs):
        info = os.lstat(os.path.join(entry, item["path"]))
        if not stat.S_ISDIR(info.st_mode):
            item["signature"] = output_signature(info)


def still_written(entry: str, outputs: dict[str, Any]) -> list[str]:
    """Outputs whose signature moved since `stamp_signatures`: something is still writing them."""
    moved = []
    for name, item in output_items(outputs):
        try:
            now = output_signature(os.lstat(os.path.join(entry, item["path"])))
        except OSError:
            now = None
        if "signature" in item and now != item["signature"]:
            moved.append(f"{name} ({item['path']})")
    return moved


def extra_files(entry: str, outputs: dict[str, Any]) -> list[str]:
    """Files the tool wrote that no template names: kept and listed, never silently dropped."""
    declared = set()
    for value in outputs.values():
        for item in value if isinstance(value, list) else [value]:
            if "path" in item:  # not a value output
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


def build_record(
    plan: Plan, started: float, seconds: float, outputs: dict[str, Any], extra: list[str]
) -> dict[str, Any]:
    return {
        "layout": LAYOUT,
        "key": plan.key,
        "key_format": KEY_FORMAT,
        "key_fields": plan.key_lines,
        "key_items": plan.key_items,  # the same, structured: what `imcache explain` diffs
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
