"""`imcache run NAME --help`: an interface's inputs and outputs, like the seed's `fsl_merge?`."""

from __future__ import annotations

from collections.abc import Mapping

import click

from imcache.core.interfaces.model import InputSpec, Interface
from imcache.core.plan import which


def interface_help(
    interface: Interface, run_help: str, env: Mapping[str, str], command: str = "run"
) -> str:
    """The help of `imcache run NAME` (or `explain NAME`); env's PATH finds the tool as a run
    of it would."""
    formatter = click.HelpFormatter()
    formatter.write_usage(
        f"imcache {command} {interface.name}",
        "[INPUTS] [--json | --get OUTPUT] [--force]"
        + (" [--dry-run]" if command == "run" else "")
        + " [--export OUTPUT=PATH]... [--depends PATH]...",
    )
    formatter.write_paragraph()
    with formatter.indentation():
        formatter.write_text(interface.description or interface.tool_name)
    found = which(interface.executable, env)
    formatter.write_paragraph()
    with formatter.indentation():
        formatter.write_text(f"Runs: {interface.executable} ({found or 'not found on PATH'})")
        formatter.write_text(f"Definition: {interface.source}")
    with formatter.section("Inputs"):
        formatter.write_dl([_input_row(spec, interface) for spec in interface.inputs])
    outputs = [(out.label, f"{out.path_template}  {out.description}") for out in interface.outputs]
    for stream in (interface.stdout_output, interface.stderr_output):
        if stream is not None:
            outputs.append(
                (stream.label, f"(captured {stream.path_template}) {stream.description}")
            )
    if outputs:
        with formatter.section("Outputs (--get NAME)"):
            formatter.write_dl(outputs)
    if interface.extension.companions:
        with formatter.section("Companions (read beside an input; enter the key)"):
            formatter.write_dl(
                [
                    (
                        interface.body.input(input_id).option,
                        ", ".join(
                            f"{c.suffix} ({'required' if c.required else 'optional'})"
                            for c in companions
                        ),
                    )
                    for input_id, companions in interface.extension.companions.items()
                ]
            )
    if interface.extension.env:
        with formatter.section("Environment (enters the key)"):
            formatter.write_dl(
                [
                    (
                        env.name,
                        f"default {env.default}; one of {', '.join(env.choices)}. "
                        f"{env.description}",
                    )
                    if env.choices
                    else (env.name, f"default {env.default}. {env.description}")
                    for env in interface.extension.env
                ]
            )
    run_options = run_help.split("Options:", 1)[-1]
    return formatter.getvalue() + "\nRun options:" + run_options


def _input_row(spec: InputSpec, interface: Interface) -> tuple[str, str]:
    metavar = {
        "File": "FILE",
        "String": "TEXT",
        "Number": "INT" if spec.integer else "NUMBER",
        "Flag": "",
        "Sub": "JSON",
    }[spec.type]
    if spec.choices is not None:
        metavar = "{" + ",".join(str(c) for c in spec.choices) + "}"
    if spec.is_list and metavar:
        metavar += "..."
    facts = ["required" if not spec.optional else "optional"]
    if spec.is_list and (spec.min_entries or spec.max_entries):
        facts.append(f"{spec.min_entries or 0} to {spec.max_entries or 'any'} values")
    if spec.minimum is not None or spec.maximum is not None:
        low = (
            ""
            if spec.minimum is None
            else f"{'>' if spec.exclusive_minimum else '>='} {spec.minimum:g}"
        )
        high = (
            ""
            if spec.maximum is None
            else f"{'<' if spec.exclusive_maximum else '<='} {spec.maximum:g}"
        )
        facts.append(" and ".join(part for part in (low, high) if part))
    if spec.default is not None:
        facts.append(f"default {spec.default}")
    if spec.id in interface.extension.defaults:
        facts.append("default " + " or else ".join(interface.extension.defaults[spec.id]))
    if spec.type == "Sub":
        facts.append("variants (@type): " + ", ".join(v.id for v in spec.variants))
    option = f"{spec.option} {metavar}".rstrip()
    return option, f"[{'; '.join(facts)}] {spec.description}".strip()
