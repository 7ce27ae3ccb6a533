"""What `imcache run` says and prints, in words both of its paths share (run_cmd.py through
click, fast.py without it), so that a hit reads the same whichever path served it."""

from __future__ import annotations

from imcache.core.plan import Plan
from imcache.core.run import RunResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def waiting_message(plan: Plan) -> str:
    return (
        f"{plan.interface.name}: another process is running this key ({plan.key[:12]}), "
        "or using or clearing it; waiting for it"
    )


def hit_message(name: str, result: RunResult) -> str:
    return f"{name}: collecting precomputed outputs (key {result.plan.key[:12]})"


def result_lines(
    result: RunResult, as_json: bool, get_name: str | None, exported: dict[str, str]
) -> list[str]:
    """stdout's lines: the one output's paths (`--get`), one JSON object, or every output."""
    if get_name is not None and get_name in result.values:
        return [_value_text(result.values[get_name])]
    if get_name is not None:
        value = result.outputs[get_name]
        return list(value) if isinstance(value, list) else [value]
    if as_json:
        import json

        report = result_json(result)
        if exported:
            report["exported"] = exported
        return [json.dumps(report, indent=2)]
    lines = []
    for output_name, value in result.outputs.items():
        paths = value if isinstance(value, list) else [value]
        lines.append(f"{output_name}: " + " ".join(paths))
    for output_name, value in result.values.items():
        lines.append(f"{output_name}: {_value_text(value)}")
    return lines + [f"(extra): {path}" for path in result.extra_files]


def result_json(result: RunResult) -> dict[str, Any]:
    return {
        "interface": result.plan.interface.name,
        "key": result.plan.key,
        "cached": result.cached,
        "work_dir": result.plan.entry,
        "outputs": {**result.outputs, **result.values},
        "extra_files": result.extra_files,
        "exit_code": result.exit_code,
        "argv": result.plan.argv,
    }


def _value_text(value: Any) -> str:
    """An output that is a value (nipype's fsl.ImageStats out_stat): numbers, space separated."""
    items = value if isinstance(value, list) else [value]
    return " ".join(str(item) for item in items)
