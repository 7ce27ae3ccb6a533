"""The last source on the search path: nipype's command-line interfaces, by nipype's names.

`PACKAGE.Name` is the public CommandLine class `nipype.interfaces.PACKAGE.Name`. What imcache
needs of it (input traits, output names) is derived once per nipype version by nipype_spec.py
and kept as JSON under $XDG_CACHE_HOME/imcache/nipype/<version>/PACKAGE/Name.json; later calls
read that file and never import nipype (a hit must not pay nipype's second of imports). The
installed version is read from nipype's dist-info folder name on sys.path, also without an
import. nipype_render.py asks nipype itself for the command line and the outputs on a miss.
"""

from __future__ import annotations

import os
import sys

from imcache.core import cjson
from imcache.core.errors import UsageError
from imcache.core.files import suppress
from imcache.core.interfaces.model import (
    Body,
    EnvSpec,
    Extension,
    GroupSpec,
    InputSpec,
    Interface,
    OutputSpec,
)
from imcache.core.layout import NIPYPE_DIST_PREFIX, nipype_descriptions, nipype_dist_version

TYPE_CHECKING = False
if TYPE_CHECKING:  # a hit on a nipype name loads this module: no typing at run time
    from collections.abc import Mapping
    from typing import Any

CATALOGUE = "nipype"  # the catalogue of a Found is "nipype <version>"


def installed_version() -> str | None:
    """nipype's version from its dist-info folder on sys.path (no import), or None."""
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(NIPYPE_DIST_PREFIX):
                version = nipype_dist_version(name)
                if version is not None:
                    return version
    return None


def catalogue_name(version: str) -> str:
    return f"{CATALOGUE} {version}"


def is_nipype_catalogue(catalogue: str) -> bool:
    return catalogue.startswith(CATALOGUE + " ")


def find_description(
    package: str, name: str, env: Mapping[str, str] | None = None
) -> tuple[str, str] | None:
    """(description path, catalogue) of nipype's PACKAGE.Name, derived if not yet on disk."""
    version = installed_version()
    if version is None:
        return None
    env = os.environ if env is None else env
    path = os.path.join(nipype_descriptions(env, version), package, f"{name}.json")
    if not os.path.isfile(path):
        from imcache.core.interfaces import nipype_spec  # imports nipype: once per version

        cls = nipype_spec.nipype_class(package, name)
        if cls is None:
            return None
        try:
            description = nipype_spec.describe(cls, f"{package}.{name}", version)
        except Exception as exc:  # nipype's class cannot even be built here
            text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise UsageError(
                f"nipype's {package}.{name} cannot be described here ({text})",
                "wrap this tool with a Boutiques definition (imcache --interfaces DIR)",
            ) from None
        try:
            _save(path, description)
        except OSError as exc:
            raise UsageError(
                f"cannot keep nipype's description of {package}.{name} at {path} ({exc.strerror})",
                "set XDG_CACHE_HOME to a folder you can write",
            ) from None
    return path, catalogue_name(version)


def _save(path: str, description: dict[str, Any]) -> None:
    import json  # a miss only: indented, as the loader's files are

    from imcache.core.files import write_atomic

    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, json.dumps(description, indent=1, sort_keys=True).encode())


def read_description(path: str) -> dict[str, Any]:
    with open(path, "rb") as handle:
        data = handle.read()
    description: dict[str, Any] = cjson.loads(data)
    description["digest"] = _digest(data)
    return description


def _digest(data: bytes) -> str:
    import xxhash  # already loaded by the key on every run

    return xxhash.xxh3_128_hexdigest(data)


def load_nipype_interface(path: str, name: str) -> Interface:
    """The description at `path` as imcache's model: parsing, checks and key are imcache's own."""
    try:
        description = read_description(path)
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"cannot read nipype's description of {name} at {path} ({exc})",
            "remove that file: it is derived again from the installed nipype",
        ) from None
    for trait, why in sorted(description["refused"].items()):
        if why.startswith("mandatory: "):
            raise UsageError(
                f"{name}: nipype's input {trait} is {why[len('mandatory: ') :]}, "
                "which imcache cannot take as options",
                "wrap this tool with a Boutiques definition (imcache --interfaces DIR)",
            )
    ids = {item["id"] for item in description["inputs"]}
    inputs = tuple(_input(item, ids) for item in description["inputs"])
    groups = tuple(
        GroupSpec(
            id=f"one of {item['id']}",
            members=(item["id"], *(x for x in item["xor"] if x in ids)),
            one_is_required=True,
        )
        for item in description["inputs"]
        if item["mandatory"] and item["xor"]
    )
    outputs = tuple(
        OutputSpec(id=o["id"], name=o["id"], path_template="", description=o["description"])
        for o in description["outputs"]
    )
    extension = Extension(
        env=tuple(
            EnvSpec(e["name"], e["default"], tuple(e["choices"])) for e in description["env"]
        ),
        # nipype lists the outputs after the run: none is planned from a template
        output_if_any={o["id"]: () for o in description["outputs"]},
        nipype_class=description["class"],
    )
    command = description["command"]
    return Interface(
        name=name,
        source=path,
        # the description holds nipype's version, the class and its input spec
        digest=description["digest"],
        tool_name=command.split()[0] if command.split() else "",
        description=description["description"],
        body=Body(id=name, command_line=command, inputs=inputs, outputs=outputs, groups=groups),
        extension=extension,
        version=description["nipype"],
    )


def _input(item: dict[str, Any], ids: set[str]) -> InputSpec:
    description = item["description"]
    if "default" in item:
        description += f" (nipype's default: {item['default']})"
    return InputSpec(
        id=item["id"],
        name=item["id"],
        type=item["type"],
        value_key=f"[{item['id'].upper()}]",
        description=description,
        optional=not item["mandatory"] or bool(item["xor"]),
        is_list=bool(item.get("list")),
        min_entries=item.get("min_entries"),
        max_entries=item.get("max_entries"),
        integer=bool(item.get("integer")),
        minimum=item.get("minimum"),
        maximum=item.get("maximum"),
        exclusive_minimum=bool(item.get("exclusive_minimum")),
        exclusive_maximum=bool(item.get("exclusive_maximum")),
        choices=tuple(item["choices"]) if "choices" in item else None,
        requires=tuple(r for r in item["requires"] if r in ids),
        disables=tuple(x for x in item["xor"] if x in ids),
    )


def nipype_interface(name: str) -> Interface | None:
    """nipype's PACKAGE.Name as imcache's model, whatever the catalogues hold (the built-in
    FSL definitions are compared with these), or None."""
    package, _, tool = name.partition(".")
    described = find_description(package, tool)
    return None if described is None else load_nipype_interface(described[0], name)


def resolve_nipype_class(cls: type) -> str:
    """The imcache name of a nipype interface class: nipype.interfaces.fsl.Merge -> "fsl.Merge"
    (for `Memory.cache(cls)`); a class nipype does not expose by that name is refused."""
    module = getattr(cls, "__module__", "")
    parts = module.split(".")
    if len(parts) < 3 or parts[:2] != ["nipype", "interfaces"]:
        raise UsageError(f"{cls!r} is not one of nipype's interfaces", "pass a nipype class")
    from imcache.core.interfaces import nipype_spec  # the class is loaded: nipype is too

    package, name = parts[2], cls.__name__
    if nipype_spec.nipype_class(package, name) is not cls:
        raise UsageError(
            f"{module}.{name} is not a public command-line interface of nipype.interfaces."
            f"{package}",
            "imcache takes nipype's CommandLine interfaces by their public names",
        )
    return f"{package}.{name}"


def list_nipype(env: Mapping[str, str] | None = None) -> tuple[str, dict[str, str]]:
    """(catalogue, {name: program}) of every nipype interface; an index kept per version, made
    on first use (it imports every package of nipype.interfaces: slow, once)."""
    version = installed_version()
    if version is None:
        return "", {}
    from imcache.core.layout import NIPYPE_INDEX

    env = os.environ if env is None else env
    path = os.path.join(nipype_descriptions(env, version), NIPYPE_INDEX)
    try:
        with open(path, "rb") as handle:
            index: dict[str, str] = cjson.loads(handle.read())
    except (OSError, ValueError):
        from imcache.core.interfaces import nipype_spec

        index = nipype_spec.index()
        with suppress(OSError):  # listed all the same, only not kept
            _save(path, index)
    return catalogue_name(version), index
