"""nipype's own command line and output listing for a nipype interface: a miss or a dry run only.

The argv is nipype's `cmdline` for imcache's checked values (input files as the absolute paths
imcache passes), built in an empty scratch folder whose path is then cut from the words: outputs
nipype names in its working folder become bare names, which the tool writes into the entry
folder (its working folder). After the run, nipype's output listing, asked in the entry folder,
names the outputs: files as paths in the entry, other values (numbers, lists) kept as values.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from imcache.core.errors import UsageError
from imcache.core.interfaces import nipype_spec  # noqa: F401 (imports nipype quietly)
from imcache.core.interfaces.model import FileArg, Interface, Value, Values
from imcache.core.interfaces.nipype_source import read_description


@contextlib.contextmanager
def _inside(folder: str) -> Iterator[None]:
    """nipype names its outputs in the process's working folder."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def nipype_instance(interface: Interface, values: Values, env_values: Mapping[str, str]) -> Any:
    """nipype's interface object with imcache's values set."""
    description = read_description(interface.source)
    tuples = {item["id"] for item in description["inputs"] if item.get("tuple")}
    module_name, _, class_name = interface.extension.nipype_class.rpartition(".")
    with warnings.catch_warnings(), raising_traits():
        warnings.simplefilter("ignore")
        cls = getattr(importlib.import_module(module_name), class_name)
        instance = cls()
        try:
            for input_id, value in values.items():
                plain = _plain(value)
                if input_id in tuples and isinstance(plain, list):
                    plain = tuple(plain)
                setattr(instance.inputs, input_id, plain)
            if "FSLOUTPUTTYPE" in env_values and "output_type" not in values:
                instance.inputs.output_type = env_values["FSLOUTPUTTYPE"]
        except Exception as exc:  # traits' own checks: a value nipype will not take
            raise _refusal(interface, exc) from None
    return instance


@contextlib.contextmanager
def raising_traits() -> Iterator[None]:
    """nipype's xor check raises inside a traits notifier, which traits prints and swallows:
    raise it instead, so that it refuses the inputs with one line."""
    from traits.trait_notifiers import pop_exception_handler, push_exception_handler

    push_exception_handler(lambda *args: None, reraise_exceptions=True)  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        pop_exception_handler()  # type: ignore[no-untyped-call]


def _plain(value: Value) -> Any:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, FileArg):
        return value.path
    return value


def _refusal(interface: Interface, exc: Exception) -> UsageError:
    text = " ".join(str(exc).split())
    return UsageError(
        f"{interface.name}: nipype refuses these inputs: {text[:300]}",
        f"see 'imcache run {interface.name} --help'",
    )


def nipype_argv(
    interface: Interface, values: Values, env_values: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """nipype's command line as words, outputs named relative to the entry, and the environment
    nipype sets for the tool (FSL's FSLOUTPUTTYPE from `output_type`)."""
    import shlex
    import tempfile

    instance = nipype_instance(interface, values, env_values)
    with tempfile.TemporaryDirectory(prefix="imcache-nipype-") as scratch:
        real = os.path.realpath(scratch)
        with _inside(real), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                line = instance.cmdline
            except Exception as exc:  # mandatory, xor, requires: nipype's own checks
                raise _refusal(interface, exc) from None
    inputs = set(_input_paths(list(values.values())))
    words = [absolute_input(relative_words(w, real), real, inputs) for w in shlex.split(line)]
    environ = {str(k): str(v) for k, v in dict(instance.inputs.environ).items()}
    return words, {**env_values, **environ}


def relative_words(word: str, scratch: str) -> str:
    """A word of nipype's command line with its working folder cut out: the tool runs in the
    entry folder, so `<cwd>/x.nii` is `x.nii` and `<cwd>` itself is `.`."""
    word = word.replace(scratch + os.sep, "")
    if word == scratch:
        return "."
    return word[: -len(scratch)] + "." if word.endswith("=" + scratch) else word


def _input_paths(values: list[Any]) -> list[str]:
    paths: list[str] = []
    for value in values:
        if isinstance(value, list):
            paths += _input_paths(value)
        elif isinstance(value, FileArg):
            paths.append(value.path)
    return paths


def absolute_input(word: str, scratch: str, inputs: set[str]) -> str:
    """nipype's BET names its input relative to the working folder (bet's long-path work-around):
    that is the input's absolute path, since the tool runs elsewhere (in the entry)."""
    if os.path.isabs(word):
        return word
    full = os.path.normpath(os.path.join(scratch, word))
    return full if full in inputs else word


def nipype_outputs(
    interface: Interface, values: Values, env_values: Mapping[str, str], entry: str, stdout: str
) -> tuple[dict[str, Any], list[str]]:
    """nipype's outputs of the run in `entry`, as the record keeps them, and what is missing."""
    description = read_description(interface.source)
    is_file = {o["id"]: o["file"] for o in description["outputs"]}
    instance = nipype_instance(interface, values, env_values)
    try:
        listed = _listed(instance, description["aggregates"], entry, stdout)
    except Exception as exc:  # nipype cannot read what the tool wrote: nothing is cached
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return {}, [f"the outputs nipype lists (nipype says {text})"]
    found: dict[str, Any] = {}
    missing: list[str] = []
    for name, value in sorted((listed or {}).items()):
        if not _defined(value):
            continue
        if is_file.get(name):
            found[name] = _files(entry, name, value, missing)
        else:
            found[name] = {"value": _jsonable(value)}
    return found, missing


def _listed(instance: Any, aggregates: bool, entry: str, stdout: str) -> Any:
    with _inside(entry), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if aggregates:  # outputs read from the tool's stdout (fsl.ImageStats, afni.BrickStat)
            from nipype.interfaces.base import Bunch

            runtime = Bunch(stdout=stdout, stderr="", cwd=entry, returncode=0, environ={})
            return instance.aggregate_outputs(runtime=runtime).get()
        return instance._list_outputs()


def _defined(value: Any) -> bool:
    from nipype.interfaces.base import isdefined

    return value is not None and isdefined(value)


def _files(entry: str, name: str, value: Any, missing: list[str]) -> Any:
    if isinstance(value, list | tuple):
        return [_files(entry, name, item, missing) for item in value]
    path = os.path.join(entry, str(value))
    if not os.path.lexists(path):
        missing.append(f"{name} ({os.path.relpath(path, entry)})")
        return {"path": path, "size": None}
    relative = os.path.relpath(path, entry)
    where = path if relative.startswith("..") else relative
    size = os.path.getsize(path) if os.path.isfile(path) else None
    return {"path": where, "size": size}


def _jsonable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)
