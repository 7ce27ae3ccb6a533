"""The `custom.imcache` keys that let a definition follow nipype where Boutiques cannot say it:
output paths from the template language, outputs asked for by any of several inputs, inputs that
only name outputs, numbers in the tool's other units, and defaults tried in turn.

Checked through the real planning path, and once end to end with a real MRtrix3 run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imcache.core.errors import UsageError
from imcache.core.plan import Plan, RunRequest, plan_run
from tests.conftest import require_tool, run_json

FSL_EXT = {"NIFTI": ".nii", "NIFTI_GZ": ".nii.gz"}


def convert_definition() -> dict[str, Any]:
    """mrconvert IN OUT [-json_export J] [-scale S]: small, real, and shaped like FSL's tools."""
    return {
        "name": "mrconvert",
        "description": "convert an image",
        "command-line": "mrconvert [IN_FILE] [OUT_FILE] [JSON] [SCALE]",
        "inputs": [
            {"id": "in_file", "name": "in", "type": "File", "value-key": "[IN_FILE]"},
            {
                "id": "out_file",
                "name": "out",
                "type": "String",
                "optional": True,
                "value-key": "[OUT_FILE]",
            },
            {
                "id": "suffix",
                "name": "suffix",
                "type": "String",
                "optional": True,
                "value-key": "[SUFFIX]",
            },
            {
                "id": "export_json",
                "name": "export_json",
                "type": "Flag",
                "optional": True,
                "command-line-flag": "-json_export",
                "value-key": "[JSON]",
            },
            {
                "id": "sidecar",
                "name": "sidecar",
                "type": "Flag",
                "optional": True,
                "command-line-flag": "",
                "value-key": "[SIDECAR]",
            },
            {
                "id": "fwhm",
                "name": "fwhm",
                "type": "Number",
                "optional": True,
                "command-line-flag": "-scale",
                "value-key": "[SCALE]",
            },
        ],
        "output-files": [
            {"id": "converted", "name": "out_file", "path-template": "[OUT_FILE]"},
            {"id": "header", "name": "header", "path-template": "header.json", "optional": True},
        ],
        "custom": {
            "imcache": {
                "env": {"OUTTYPE": {"default": "NIFTI_GZ", "choices": list(FSL_EXT)}},
                "maps": {"ext": FSL_EXT},
                "defaults": {
                    "out_file": [
                        "{in_file|stem}{suffix}{env.OUTTYPE|ext}",
                        "{in_file|stem}_conv{env.OUTTYPE|ext}",
                    ]
                },
                "template-only": ["suffix", "sidecar"],
                "output-templates": {"header": "{out_file|stem}.json"},
                "output-if-any": {"header": ["export_json", "sidecar"]},
                "formats": {"fwhm": {"printf": "%.3f", "divide-by": 2.3548200450309493}},
                "output-names": {"converted": "out_file"},
            }
        },
    }


@pytest.fixture
def plan(tmp_path: Path, isolated: Path) -> Callable[..., Plan]:
    catalogue = tmp_path / "defs"
    (catalogue / "x").mkdir(parents=True)
    (catalogue / "x" / "Convert.json").write_text(json.dumps(convert_definition()))
    (isolated / "t1.nii.gz").write_bytes(b"not read by planning")

    def make(*words: str, outtype: str = "NIFTI_GZ") -> Plan:
        return plan_run(
            RunRequest(
                interface="x.Convert",
                words=["--in-file", "t1.nii.gz", *words],
                base_dir=str(tmp_path / "base"),
                cwd=str(isolated),
                env={"PATH": "/usr/bin:/bin", "OUTTYPE": outtype},
                catalogues=[str(catalogue)],
            )
        )

    return make


def outputs(plan: Plan) -> dict[str, str]:
    return {out.spec.label: out.path for out in plan.outputs}


def test_first_default_whose_fields_all_have_values(plan: Callable[..., Plan]) -> None:
    assert plan().argv[2] == "t1_conv.nii.gz"
    assert plan("--suffix", "_x").argv[2] == "t1_x.nii.gz"
    assert plan("--suffix", "_x", outtype="NIFTI").argv[2] == "t1_x.nii"
    assert plan("--out-file", "given.nii", "--suffix", "_x").argv[2] == "given.nii"


def test_template_only_input_changes_the_key_not_the_command_line(
    plan: Callable[..., Plan],
) -> None:
    plain, suffixed = plan("--out-file", "o.nii"), plan("--out-file", "o.nii", "--suffix", "_x")
    assert plain.argv == suffixed.argv
    assert plain.key != suffixed.key  # every value enters the key, printed or not


def test_output_asked_for_by_any_of_its_inputs(plan: Callable[..., Plan]) -> None:
    assert "header" not in outputs(plan())
    assert outputs(plan("--export-json"))["header"] == "t1_conv.json"
    assert outputs(plan("--sidecar"))["header"] == "t1_conv.json"
    assert "-json_export" not in plan("--sidecar").argv  # template-only flag: no word


def test_output_template_follows_the_derived_default_and_env(plan: Callable[..., Plan]) -> None:
    assert outputs(plan("--export-json", outtype="NIFTI")) == {
        "out_file": "t1_conv.nii",
        "header": "t1_conv.json",
    }
    assert outputs(plan("--export-json", "--out-file", "b.nii.gz"))["header"] == "b.json"


def test_output_template_value_cannot_climb_out(plan: Callable[..., Plan]) -> None:
    with pytest.raises(UsageError, match="outside the entry folder"):
        plan("--export-json", "--out-file", "../../b.nii.gz")


def test_number_divided_before_formatting(plan: Callable[..., Plan]) -> None:
    argv = plan("--fwhm", "8").argv
    assert argv[argv.index("-scale") + 1] == f"{8 / 2.3548200450309493:.3f}" == "3.397"
    assert plan("--fwhm", "8").key != plan("--fwhm", "8.0001").key


def test_end_to_end_with_mrconvert(
    tmp_path: Path, make_nifti: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("mrconvert")
    catalogue = tmp_path / "defs"
    (catalogue / "x").mkdir(parents=True)
    definition = convert_definition()
    definition["custom"]["imcache"]["output-templates"]["header"] = "header.json"
    definition["command-line"] = "mrconvert [IN_FILE] [OUT_FILE] [JSON]"
    definition["inputs"][3]["command-line-flag"] = "-json_export header.json"
    del definition["inputs"][5]
    del definition["custom"]["imcache"]["formats"]
    (catalogue / "x" / "Convert.json").write_text(json.dumps(definition))
    make_nifti("t1.nii.gz")
    monkeypatch.setenv("IMCACHE_PATH", str(catalogue))

    first = run_json(
        "run", "x.Convert", "--in-file", "t1.nii.gz", "--suffix", "_c", "--export-json", "--json"
    )
    again = run_json(
        "run", "x.Convert", "--in-file", "t1.nii.gz", "--suffix", "_c", "--export-json", "--json"
    )

    assert not first["cached"] and again["cached"]
    assert Path(first["outputs"]["out_file"]).name == "t1_c.nii.gz"
    assert Path(first["outputs"]["out_file"]).is_file()
    assert Path(first["outputs"]["header"]).is_file()
    assert (
        "header" not in run_json("run", "x.Convert", "--in-file", "t1.nii.gz", "--json")["outputs"]
    )


def test_a_number_zero_asks_for_its_output(plan: Callable[..., Plan], tmp_path: Path) -> None:
    """0 == False in Python: a Number 0 is given all the same."""
    definition = convert_definition()
    definition["custom"]["imcache"]["output-if-any"] = {"header": ["fwhm"]}
    (tmp_path / "defs" / "x" / "Convert.json").write_text(json.dumps(definition))
    assert "header" in outputs(plan("--fwhm", "0"))
    assert "header" not in outputs(plan())


def test_noext_keeps_the_folder_of_an_output_named_beside_another(
    isolated: Path, tmp_path: Path
) -> None:
    """bet writes its mask beside its brain image: sub/brain.nii.gz -> sub/brain_mask.nii.gz."""
    (isolated / "t1.nii.gz").write_bytes(b"not read by planning")
    planned = plan_run(
        RunRequest(
            interface="fsl.BET",
            words=["--in-file", "t1.nii.gz", "--out-file", "sub/brain.nii.gz", "--mask"],
            base_dir=str(tmp_path / "base"),
            cwd=str(isolated),
            env={"PATH": "/usr/bin:/bin"},
        )
    )
    assert outputs(planned)["mask_file"] == "sub/brain_mask.nii.gz"
    assert outputs(planned)["out_file"] == "sub/brain.nii.gz"


def test_count_writes_a_lists_length_before_its_items(isolated: Path, tmp_path: Path) -> None:
    """nipype's FAST: -S N before the N channels; its outputs are named after the last one."""
    for name in ("t1.nii.gz", "t2.nii.gz", "pd.nii.gz"):
        (isolated / name).write_bytes(b"not read by planning")
    planned = plan_run(
        RunRequest(
            interface="fsl.FAST",
            words=["--in-files", "t1.nii.gz", "t2.nii.gz", "pd.nii.gz"],
            base_dir=str(tmp_path / "base"),
            cwd=str(isolated),
            env={"PATH": "/usr/bin:/bin"},
        )
    )
    assert planned.argv[-5:] == [
        "-S",
        "3",
        *(str(isolated / n) for n in ("t1.nii.gz", "t2.nii.gz", "pd.nii.gz")),
    ]
    assert planned.argv[planned.argv.index("-o") + 1] == "pd"  # {in_files[-1]|stem}


def test_a_file_field_is_the_files_name_not_the_folder_it_came_from(
    isolated: Path, tmp_path: Path
) -> None:
    """The folder is not in the key (the same data elsewhere hits): it must not name outputs."""
    plans = []
    for folder in ("a", "b"):
        (isolated / folder).mkdir()
        (isolated / folder / "t1.nii.gz").write_bytes(b"the same image")
        plans.append(
            plan_run(
                RunRequest(
                    interface="fsl.BET",
                    words=["--in-file", f"{folder}/t1.nii.gz", "--mask"],
                    base_dir=str(tmp_path / "base"),
                    cwd=str(isolated),
                    env={"PATH": "/usr/bin:/bin"},
                )
            )
        )
    assert plans[0].key == plans[1].key
    assert outputs(plans[0]) == outputs(plans[1])
    assert outputs(plans[0])["mask_file"] == "t1_brain_mask.nii.gz"
