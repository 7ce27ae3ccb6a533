"""`python -m bench.nipype_coverage [PACKAGE ...]`: how many of nipype's command-line interfaces
imcache renders exactly as nipype does (issue 15, item 6).

For every public CommandLine class of every nipype package of command-line tools, the walk
checks that `--help` renders, then generates minimal valid inputs (every mandatory input, then
each optional input in turn, with the inputs it requires) and compares imcache's argv (the
inputs given as `imcache run` words, parsed and checked by imcache, then rendered) with nipype's
`cmdline` for the same values set on nipype's class directly. Each interface is counted as

- identical: every case gives nipype's argv;
- refused: imcache (or nipype itself) refuses the generated inputs, with the reason;
- differing: some case gives another argv (a bug: none may differ silently).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from imcache.core.errors import ImcacheError
from imcache.core.interfaces.arguments import parse_words
from imcache.core.interfaces.model import InputSpec, Interface
from imcache.core.interfaces.nipype_render import (
    absolute_input,
    nipype_argv,
    raising_traits,
    relative_words,
)
from imcache.core.interfaces.nipype_source import find_description, load_nipype_interface
from imcache.core.interfaces.values import relevant_env, resolve_values


def packages() -> list[str]:
    from imcache.core.interfaces.nipype_spec import tool_packages

    return tool_packages()


class Outcome:
    def __init__(self, name: str, status: str, reason: str = "") -> None:
        self.name, self.status, self.reason = name, status, reason


def check_package(package: str, data: Path, optional_limit: int | None = None) -> list[Outcome]:
    from imcache.core.interfaces.nipype_spec import command_line_classes

    try:
        classes = command_line_classes(package)
    except Exception as exc:  # a package whose own imports fail here
        return [Outcome(f"{package}.*", "refused", f"nipype cannot import it: {exc}")]
    return [check_interface(package, name, data, optional_limit) for name in sorted(classes)]


def check_interface(
    package: str, name: str, data: Path, optional_limit: int | None = None
) -> Outcome:
    full = f"{package}.{name}"
    try:
        described = find_description(package, name)
    except Exception as exc:  # nipype's class cannot be built without its tool or data
        return Outcome(full, "refused", f"cannot describe: {type(exc).__name__}: {exc}"[:200])
    if described is None:
        return Outcome(full, "refused", "not found")
    try:
        interface = load_nipype_interface(described[0], full)
    except ImcacheError as error:
        return Outcome(full, "refused", error.message)
    from imcache.cli.interface_help import interface_help

    interface_help(interface, "Options:", os.environ)  # --help must render
    cases = _cases(interface, optional_limit)
    accepted = 0
    for values in cases:
        status, reason = _compare(interface, values, data)
        if status == "differing":
            return Outcome(full, status, reason)
        accepted += status == "identical"
        if status == "refused" and values is cases[0]:  # the minimal inputs
            return Outcome(full, status, reason)
    return Outcome(full, "identical", f"{accepted} of {len(cases)} cases accepted")


def _cases(interface: Interface, optional_limit: int | None) -> list[dict[str, Any]]:
    """The minimal inputs (every mandatory one; one of each xor group), then each optional input
    in turn added to them (with the inputs it requires), then `args`."""
    from imcache.core.interfaces.nipype_source import read_description

    description = read_description(interface.source)
    mandatory = {i["id"] for i in description["inputs"] if i["mandatory"]}
    by_id = {spec.id: spec for spec in interface.inputs}
    base: dict[str, Any] = {}
    taken: set[str] = set()
    for spec in interface.inputs:
        if spec.id in mandatory and spec.id not in taken:
            base[spec.id] = _value(spec)
            taken.update(spec.disables)  # xor: one of the group is enough
            taken.add(spec.id)
    cases = [base]
    optional = [s for s in interface.inputs if s.id not in taken and s.id != "args"]
    for spec in optional[:optional_limit]:
        if any(other in base for other in spec.disables):
            continue
        case = dict(base)
        case[spec.id] = _value(spec)
        for needed in spec.requires:
            if needed in by_id and needed not in case:
                case[needed] = _value(by_id[needed])
        cases.append(case)
    if "args" in by_id:
        cases.append({**base, "args": "-extra word"})
    return cases


def _value(spec: InputSpec) -> Any:
    if spec.type == "Flag":
        return True
    count = spec.min_entries or 1
    item: Any
    if spec.choices:
        item = spec.choices[0]
    elif spec.type == "File":
        item = f"@{spec.id}"  # made into a file below
    elif spec.type == "String":
        item = f"{spec.id}.nii.gz" if spec.id.startswith("out") else "word"
    elif spec.minimum is not None:
        item = spec.minimum + (1 if spec.exclusive_minimum else 0)
        if spec.maximum is not None and item > spec.maximum:
            item = spec.minimum
        item = int(item) if spec.integer else float(item)
    else:
        item = 1 if spec.integer else 0.5
    return [item] * count if spec.is_list else item


def _files(values: dict[str, Any], data: Path) -> dict[str, Any]:
    """`@id` placeholders as real files in `data` (a small NIfTI volume each)."""

    def real(item: Any) -> Any:
        if isinstance(item, str) and item.startswith("@"):
            path = data / f"{item[1:]}.nii.gz"
            if not path.exists():
                path.write_bytes((data / "seed.nii.gz").read_bytes())
            return str(path)
        return item

    return {k: [real(i) for i in v] if isinstance(v, list) else real(v) for k, v in values.items()}


def _words(values: dict[str, Any], interface: Interface) -> list[str]:
    words: list[str] = []
    for input_id, value in values.items():
        option = interface.body.input(input_id).option
        if value is True:
            words.append(option)
        elif isinstance(value, list):
            words += [option, *(str(v) for v in value)]
        else:
            words.append(f"{option}={value}")
    return words


def _compare(interface: Interface, values: dict[str, Any], data: Path) -> tuple[str, str]:
    values = _files(values, data)
    theirs = _nipype_cmdline(interface, values)
    env = dict(os.environ)
    try:
        typed = resolve_values(
            interface, parse_words(interface, _words(values, interface)), env, str(data)
        )
        ours = nipype_argv(interface, typed, relevant_env(interface, env))[0]
    except ImcacheError as error:
        if theirs is None:  # both refuse: the generated inputs are not valid for nipype
            return "both refuse", error.message[:200]
        return "refused", error.message[:200]
    if theirs is None:
        return "differing", f"imcache renders {shlex.join(ours)}; nipype refuses the inputs"
    if ours != theirs:
        return "differing", f"{shlex.join(ours)} != {shlex.join(theirs)}"
    return "identical", ""


def _nipype_cmdline(interface: Interface, values: dict[str, Any]) -> list[str] | None:
    """nipype's words for the values, set on its class directly (None: nipype refuses them)."""
    import importlib

    from imcache.core.interfaces.nipype_source import read_description

    tuples = {i["id"] for i in read_description(interface.source)["inputs"] if i.get("tuple")}
    module_name, _, class_name = interface.extension.nipype_class.rpartition(".")
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as scratch, raising_traits():
        warnings.simplefilter("ignore")
        before = os.getcwd()
        real = os.path.realpath(scratch)
        os.chdir(real)
        try:
            instance = getattr(importlib.import_module(module_name), class_name)()
            for name, value in values.items():
                setattr(instance.inputs, name, tuple(value) if name in tuples else value)
            fsl_type = any(env.name == "FSLOUTPUTTYPE" for env in interface.extension.env)
            if fsl_type and "output_type" not in values:
                instance.inputs.output_type = os.environ.get("FSLOUTPUTTYPE", "NIFTI_GZ")
            line = instance.cmdline
        except Exception:
            return None
        finally:
            os.chdir(before)
    inputs = {str(v) for v in _leaves(values) if isinstance(v, str) and os.path.isabs(v)}
    # the oracle's one normalisation: a relative word naming an input file is that file
    return [absolute_input(relative_words(w, real), real, inputs) for w in shlex.split(line)]


def _leaves(values: dict[str, Any]) -> list[Any]:
    return [i for v in values.values() for i in (v if isinstance(v, list) else [v])]


def seed_data(folder: Path) -> Path:
    import nibabel as nib
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    volume = np.random.default_rng(0).random((4, 4, 3), dtype=np.float32)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(folder / "seed.nii.gz"))
    return folder


def report(outcomes: Iterable[Outcome]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {}
    for outcome in outcomes:
        counts.setdefault(outcome.name.split(".")[0], Counter())[outcome.status] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nipype_coverage", description=__doc__)
    parser.add_argument("packages", nargs="*", help="nipype packages (default: all of them)")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every refusal")
    args = parser.parse_args(argv)
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory() as folder:
        data = seed_data(Path(folder))
        for package in args.packages or packages():
            outcomes += check_package(package, data)
    for outcome in outcomes:
        if outcome.status == "differing" or (args.verbose and outcome.status != "identical"):
            print(f"{outcome.status:9} {outcome.name}: {outcome.reason}")
    counts = report(outcomes)
    print(f"{'package':14} {'identical':>9} {'refused':>8} {'differing':>9}")
    total: Counter[str] = Counter()
    for package, count in sorted(counts.items()):
        total += count
        print(f"{package:14} {count['identical']:9} {count['refused']:8} {count['differing']:9}")
    share = total["identical"] / max(1, sum(total.values()))
    print(
        f"{'all':14} {total['identical']:9} {total['refused']:8} {total['differing']:9}"
        f"  ({share:.0%} identical)"
    )
    return 1 if total["differing"] else 0


if __name__ == "__main__":
    sys.exit(main())
