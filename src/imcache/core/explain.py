"""`imcache explain`: every field that enters a run's key, hit or miss, and on a miss how the
nearest entry of the same interface differs (as ccache's debug text and nipype's hash-dict diff).

Planning is the run's own (plan.py) with a digest memo that is read, never written; the entries
are only read. Nothing runs and nothing is written: the cache root is not even created.
"""

from __future__ import annotations

import os
from typing import Any

from imcache.core.datatype import datatype, field
from imcache.core.layout import is_key
from imcache.core.plan import Plan, RunRequest, plan_run
from imcache.core.run import look_up

SHORT = 12  # digits of a digest shown in a difference (the JSON keeps them whole)


@datatype
class Nearest:
    key: str
    entry: str
    differences: list[str]  # `input.in_file: content 3f2a... -> 9c1b...`, one per field


@datatype
class Explanation:
    plan: Plan
    hit: bool
    damage: str = ""  # an entry at this key that is not used, and why
    nearest: Nearest | None = None
    compared: int = 0  # entries of the interface looked at
    fields: dict[str, Any] = field(default_factory=dict)


def explain(request: RunRequest) -> Explanation:
    """The key's fields, hit or miss, and on a miss the nearest entry (never writes)."""
    plan = plan_run(_read_only(request))
    hit = look_up(plan) is not None
    damage = ""
    if not hit and os.path.isdir(plan.entry):
        _, damage = plan.store.check_record(plan.entry)
        damage = damage or "it is incomplete, or its outputs changed"
    nearest, compared = (None, 0) if hit else _nearest(plan)
    return Explanation(plan, hit, damage, nearest, compared, plan.key_items)


def _read_only(request: RunRequest) -> RunRequest:
    names: tuple[str, ...] = getattr(RunRequest, "__datatype_fields__")  # noqa: B009 (made by @datatype)
    given = {name: getattr(request, name) for name in names}
    return RunRequest(**{**given, "read_only": True})


def _nearest(plan: Plan) -> tuple[Nearest | None, int]:
    """The entry of the same interface with the most fields equal (latest first on a tie)."""
    folder = os.path.dirname(plan.entry)
    try:
        names = sorted(name for name in os.listdir(folder) if is_key(name) and name != plan.key)
    except OSError:
        return None, 0
    best: tuple[int, float, Nearest] | None = None
    for name in names:
        entry = os.path.join(folder, name)
        record = plan.store.read_record(entry)
        if record is None:
            continue
        theirs = recorded_items(record)
        equal = sum(1 for label, value in theirs.items() if plan.key_items.get(label) == value)
        when = os.stat(entry).st_mtime if os.path.exists(entry) else 0.0
        if best is None or (equal, when) > best[:2]:
            best = (equal, when, Nearest(name, entry, differences(theirs, plan.key_items)))
    return (best[2] if best else None), len(names)


def recorded_items(record: dict[str, Any]) -> dict[str, Any]:
    """The key's fields as the record keeps them; an older record has only their text."""
    items = record.get("key_items")
    if isinstance(items, dict):
        return items
    found = {}
    for line in record.get("key_fields", []):
        label, _, shown = str(line).partition(" = ")
        found[label] = shown
    return found


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each field that differs between two keys, said as what changed, in the key's order."""
    found: list[str] = []
    labels = list(new) + [label for label in old if label not in new]
    for label in labels:
        if label not in old:
            found.append(f"{label}: not in that entry -> {_short(new[label])}")
        elif label not in new:
            found.append(f"{label}: {_short(old[label])} -> not given")
        elif label == "tool":
            found += _tool_differences(str(old[label]), str(new[label]))
        else:
            found += _value_differences(label, old[label], new[label])
    return found


def _value_differences(label: str, old: Any, new: Any) -> list[str]:
    if old == new:
        return []
    if _is_file(old) and _is_file(new):
        return _file_differences(label, old, new)
    if isinstance(old, list) and isinstance(new, list):
        found = []
        for index in range(max(len(old), len(new))):
            at = f"{label}[{index}]"
            if index >= len(old):
                found.append(f"{at}: not in that entry -> {_short(new[index])}")
            elif index >= len(new):
                found.append(f"{at}: {_short(old[index])} -> not given")
            else:
                found += _value_differences(at, old[index], new[index])
        return found
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted({*old, *new}):
            at = f"{label}.{key}"
            if key not in old:
                found.append(f"{at}: not in that entry -> {_short(new[key])}")
            elif key not in new:
                found.append(f"{at}: {_short(old[key])} -> not given")
            else:
                found += _value_differences(at, old[key], new[key])
        return found
    return [f"{label}: {_short(old)} -> {_short(new)}"]


def _is_file(value: Any) -> bool:
    return isinstance(value, dict) and "file" in value


def _file_differences(label: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found = []
    if old.get("file") != new.get("file"):
        found.append(f"{label}: name {old.get('file')!r} -> {new.get('file')!r}")
    if old.get("xxh3") != new.get("xxh3"):
        found.append(f"{label}: content {_digest(old.get('xxh3'))} -> {_digest(new.get('xxh3'))}")
    theirs, ours = old.get("companions") or {}, new.get("companions") or {}
    for name in sorted({*theirs, *ours}):
        if name not in theirs:
            found.append(f"{label}: companion {name!r} added")
        elif name not in ours:
            found.append(f"{label}: companion {name!r} gone")
        elif theirs[name] != ours[name]:
            found.append(
                f"{label}: companion {name!r} content "
                f"{_digest(theirs[name])} -> {_digest(ours[name])}"
            )
    return found


def tool_parts(identity: str) -> dict[str, str]:
    """`/usr/bin/bet size=10 mtime_ns=5` -> {path, size, mtime_ns}; `... xxh3:D` -> {path, xxh3}."""
    if identity == "not found":
        return {"path": "not found"}
    words = identity.rsplit(" ", 2)
    if len(words) == 3 and words[1].startswith("size=") and words[2].startswith("mtime_ns="):
        return {"path": words[0], "size": words[1][5:], "mtime": words[2][9:]}
    path, _, digest = identity.rpartition(" xxh3:")
    return {"path": path, "content": digest} if path else {"path": identity}


def _tool_differences(old: str, new: str) -> list[str]:
    if old == new:
        return []
    theirs, ours = tool_parts(old), tool_parts(new)
    if theirs["path"] != ours["path"]:
        return [f"tool: path {theirs['path']} -> {ours['path']}"]
    changed = [name for name in ("content", "size", "mtime") if theirs.get(name) != ours.get(name)]
    return [f"tool: {name} changed" for name in changed] or [f"tool: {old} -> {new}"]


def _digest(value: Any) -> str:
    return f"{str(value)[:SHORT]}..." if value else "none"


def _short(value: Any) -> str:
    if _is_file(value):
        return f"file {value.get('file')!r} xxh3:{_digest(value.get('xxh3'))}"
    if isinstance(value, list) and any(_is_file(item) for item in value):
        return "[" + ", ".join(_short(item) for item in value) + "]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def as_json(explanation: Explanation) -> dict[str, Any]:
    plan = explanation.plan
    nearest = explanation.nearest
    return {
        "interface": plan.interface.name,
        "key": plan.key,
        "hit": explanation.hit,
        "work_dir": plan.entry,
        "fields": explanation.fields,
        "key_fields": plan.key_lines,
        "damage": explanation.damage or None,
        "compared": explanation.compared,
        "nearest": None
        if nearest is None
        else {"key": nearest.key, "work_dir": nearest.entry, "differences": nearest.differences},
    }
