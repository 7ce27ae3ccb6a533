"""Describe a nipype command-line interface as plain JSON data: imports nipype (a miss only).

The description names every input trait imcache can carry (its kind, whether it is a list and of
how many items, its range, choices, mandatory/xor/requires, whether a file must exist), the
traits it cannot carry with the reason, and the output names (file or value). nipype_source.py
keeps it on disk per nipype version and turns it into imcache's Interface model, so that a hit
never imports nipype. Descriptions come from the user's own nipype (never this repository).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import warnings
from typing import Any

# nipype logs at import time (its optional-package advice) to stdout, where imcache prints only
# results (`interfaces --json`, `--get`): its handlers are made now, bound to stderr instead.
with contextlib.redirect_stdout(sys.stderr):
    import nipype  # noqa: F401

FORMAT = 1
# Inputs that nipype itself fills in or that are no user's to set.
SKIPPED = frozenset({"environ", "trait_added", "trait_modified", "ignore_exception"})
# FSL reads FSLOUTPUTTYPE; imcache keys it (the built-in catalogue's default).
FSL_ENV = {"name": "FSLOUTPUTTYPE", "default": "NIFTI_GZ"}


class Refused(Exception):
    """A trait imcache cannot carry as options; the message says why."""


def command_line_classes(package: str) -> dict[str, type]:
    """The public CommandLine classes that `nipype.interfaces.PACKAGE` exposes, by name."""
    from nipype.interfaces.base import CommandLine

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module(f"nipype.interfaces.{package}")
    found = {}
    for name, value in vars(module).items():
        if (
            not name.startswith("_")
            and inspect.isclass(value)
            and issubclass(value, CommandLine)
            and value is not CommandLine
            and getattr(value, "_cmd", None)
        ):
            found[name] = value
    return found


def nipype_class(package: str, name: str) -> type | None:
    try:
        return command_line_classes(package).get(name)
    except Exception:  # no such package, or one whose own imports fail here
        return None


def describe(cls: type, name: str, version: str) -> dict[str, Any]:
    """The JSON description of one interface class (see the module's docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance = cls()
        command = str(instance.cmd)
    inputs, refused = [], {}
    spec = instance.inputs
    for trait_name in sorted(spec.copyable_trait_names()):
        if trait_name in SKIPPED:
            continue
        trait = spec.trait(trait_name)
        try:
            inputs.append(_describe_input(trait_name, trait))
        except Refused as why:
            refused[trait_name] = ("mandatory: " if trait.mandatory else "") + str(why)
    outputs = []
    if instance.output_spec is not None:
        out_spec = instance.output_spec()
        for out_name in sorted(out_spec.copyable_trait_names()):
            if out_name in SKIPPED:
                continue
            out_trait = out_spec.trait(out_name)
            outputs.append(
                {"id": out_name, "file": _is_path_like(out_trait), "description": _desc(out_trait)}
            )
    package = name.split(".", 1)[0]
    return {
        "format": FORMAT,
        "name": name,
        "nipype": version,
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "command": command,
        "description": _doc(cls),
        "inputs": inputs,
        "refused": refused,
        "outputs": outputs,
        "env": [_fsl_env(spec)] if package == "fsl" and "output_type" in inputs_ids(inputs) else [],
        "aggregates": _overrides(cls, "aggregate_outputs"),
    }


def inputs_ids(inputs: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in inputs}


def _fsl_env(spec: Any) -> dict[str, Any]:
    choices = [str(v) for v in spec.trait("output_type").trait_type.values]
    return {**FSL_ENV, "choices": choices}


def _overrides(cls: type, method: str) -> bool:
    from nipype.interfaces.base import BaseInterface

    return getattr(cls, method) is not getattr(BaseInterface, method)


def _doc(cls: type) -> str:
    text = inspect.getdoc(cls) or ""
    return text.split("\n\n", 1)[0].replace("\n", " ").strip()


def _desc(trait: Any) -> str:
    return " ".join(str(trait.desc or "").split())


def _describe_input(name: str, trait: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": name,
        "description": _desc(trait),
        "mandatory": bool(trait.mandatory),
        "xor": [str(x) for x in (trait.xor or ()) if x != name],
        "requires": [str(x) for x in (trait.requires or ())],
    }
    if trait.usedefault and trait.default is not None:
        item["default"] = repr(trait.default)
    item.update(_kind(trait.trait_type, name))
    return item


def _kind(handler: Any, name: str) -> dict[str, Any]:
    """What imcache's model needs of a trait type: the kind and its limits."""
    import traits.api as tr

    if isinstance(handler, tr.List | tr.Set):
        inner = handler.item_trait.trait_type
        item = _scalar(inner, name)
        maxlen = handler.maxlen if handler.maxlen < 2**31 else None
        return {**item, "list": True, "min_entries": handler.minlen or None, "max_entries": maxlen}
    if isinstance(handler, tr.BaseTuple):
        kinds = [_scalar(t.trait_type, name) for t in handler.types]
        if any(k != kinds[0] for k in kinds):
            raise Refused("a tuple of different kinds of value")
        count = len(kinds)
        return {**kinds[0], "list": True, "tuple": True, "min_entries": count, "max_entries": count}
    alternatives = getattr(handler, "handlers", None)
    if alternatives:  # Either(File, List(File)) and the like: its first, plain kind
        return _kind(alternatives[0], name)
    return _scalar(handler, name)


def _scalar(handler: Any, name: str) -> dict[str, Any]:
    import traits.api as tr
    from nipype.interfaces.base.traits_extension import BasePath

    if isinstance(handler, BasePath):
        return {"type": "File" if handler.exists else "String", "path": True}
    if isinstance(handler, tr.BaseBool):
        return {"type": "Flag"}
    if isinstance(handler, tr.BaseEnum):
        values = list(handler.values)
        if all(isinstance(v, str) for v in values):
            return {"type": "String", "choices": values}
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return {
                "type": "Number",
                "choices": values,
                "integer": all(type(v) is int for v in values),
            }
        raise Refused("a choice among values of different kinds")
    if isinstance(handler, tr.BaseRange):
        low, high = handler._low, handler._high
        return {
            "type": "Number",
            "integer": isinstance(low, int) and isinstance(high, int),
            "minimum": low,
            "maximum": high,
            "exclusive_minimum": bool(handler._exclude_low),
            "exclusive_maximum": bool(handler._exclude_high),
        }
    if isinstance(handler, tr.BaseInt):
        return {"type": "Number", "integer": True}
    if isinstance(handler, tr.BaseFloat):
        return {"type": "Number"}
    if isinstance(handler, tr.BaseStr | tr.String):
        return {"type": "String"}
    raise Refused(f"a {type(handler).__name__} value, which has no plain command-line form")


def _is_path_like(trait: Any) -> bool:
    import traits.api as tr
    from nipype.interfaces.base.traits_extension import BasePath

    handler = trait.trait_type
    if isinstance(handler, tr.List):
        handler = handler.item_trait.trait_type
    if isinstance(handler, tr.BaseTuple):
        return False
    alternatives = [handler, *(getattr(handler, "handlers", None) or ())]
    return any(isinstance(h, BasePath) for h in alternatives)


# Modules of nipype.interfaces that wrap no command-line tool (or need other software to import).
NOT_TOOLS = frozenset(
    {"base", "utility", "io", "matlab", "spm", "nipy", "dipy", "nilearn", "cmtk", "mixins"}
    | {"tests", "dynamic_slicer", "vtkbase", "image", "nitime", "r", "cat12"}
)


def tool_packages() -> list[str]:
    """The modules of nipype.interfaces that may hold command-line interfaces."""
    import pkgutil

    import nipype.interfaces

    found = [m.name for m in pkgutil.iter_modules(nipype.interfaces.__path__)]
    return sorted(n for n in found if n not in NOT_TOOLS and not n.startswith("_"))


def index() -> dict[str, str]:
    """PACKAGE.Name -> the program it runs, for every public CommandLine class."""
    names = {}
    for package in tool_packages():
        try:
            classes = command_line_classes(package)
        except Exception:  # a package whose own imports fail here lists nothing
            continue
        for name, cls in sorted(classes.items()):
            command = str(getattr(cls, "_cmd", "") or "")
            names[f"{package}.{name}"] = command.split()[0] if command.split() else ""
    return names
