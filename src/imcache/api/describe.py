"""An interface as Python sees it: the docstring `help()` and IPython's `?` show, and the
signature (one keyword-only parameter per input) that completes input names."""

from __future__ import annotations

import inspect
import keyword
import textwrap

from imcache.core.interfaces.model import InputSpec, Interface

FORCE = "force"  # the call's own keyword (run again), unless an input has that name


def has_input(interface: Interface, input_id: str) -> bool:
    return any(spec.id == input_id for spec in interface.inputs)


def python_type(spec: InputSpec) -> str:
    """The Python type an input takes, as text (for the signature and the help)."""
    one = {
        "File": "str | os.PathLike[str]",
        "String": "str",
        "Number": "int" if spec.integer else "float",
        "Flag": "bool",
        "Sub": "dict[str, object]",
    }[spec.type]
    return f"list[{one}]" if spec.is_list else one


def signature(interface: Interface) -> inspect.Signature:
    """Keyword-only parameters, required inputs first; then `force`, the call's own switch.

    An input whose id is no Python name (a keyword, a leading digit) is still accepted through
    `**{...}`, but cannot be a parameter."""
    specs = [s for s in interface.inputs if s.id.isidentifier() and not keyword.iskeyword(s.id)]
    specs.sort(key=lambda s: s.optional)  # stable: the definition's order within each kind
    parameters = [
        inspect.Parameter(
            spec.id,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if not spec.optional else spec.default,
            annotation=python_type(spec) if not spec.optional else f"{python_type(spec)} | None",
        )
        for spec in specs
    ]
    if not has_input(interface, FORCE):
        keyword_only = inspect.Parameter.KEYWORD_ONLY
        parameters.append(inspect.Parameter(FORCE, keyword_only, default=False, annotation="bool"))
    return inspect.Signature(parameters, return_annotation="imcache.Result")


def docstring(interface: Interface) -> str:
    """Description, inputs (type, default, required, choices) and outputs, in nipype's order."""
    lines = [interface.description or interface.name, ""]
    required = [s for s in interface.inputs if not s.optional]
    optional = [s for s in interface.inputs if s.optional]
    for title, specs in (("Required inputs", required), ("Optional inputs", optional)):
        if specs:
            lines += [f"{title}:", *(_input_line(spec) for spec in specs), ""]
    outputs = [(out.label, out.description) for out in interface.outputs]
    for stream in (interface.stdout_output, interface.stderr_output):
        if stream is not None:
            outputs.append((stream.label, stream.description))
    lines.append("Outputs (res.outputs.NAME, an absolute path in the cache entry):")
    described = [_wrapped(f"{name}: {text}" if text else name) for name, text in outputs]
    lines += described or ["    none"]
    lines += [
        "",
        "Call with keyword arguments; force=True runs again even when a cached result exists.",
        f"Interface definition: {interface.source}",
    ]
    return "\n".join(lines)


def _input_line(spec: InputSpec) -> str:
    facts = [python_type(spec)]
    if spec.default is not None:
        facts.append(f"default={spec.default!r}")
    if spec.choices is not None:
        facts.append(f"one of {list(spec.choices)}")
    if spec.minimum is not None:
        facts.append(f"{'>' if spec.exclusive_minimum else '>='} {spec.minimum:g}")
    if spec.maximum is not None:
        facts.append(f"{'<' if spec.exclusive_maximum else '<='} {spec.maximum:g}")
    text = f"{spec.id} ({', '.join(facts)})"
    if spec.description:
        text += f": {spec.description}"
    return _wrapped(text)


def _wrapped(text: str) -> str:
    return textwrap.fill(text, 78, initial_indent="    ", subsequent_indent="        ")
