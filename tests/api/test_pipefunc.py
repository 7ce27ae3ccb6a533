"""PipeFunc (api/pipefunc.py): a call runs or reuses, help and signature show the interface,
errors are the core's exception types, and a hit costs stat calls, not memory."""

from __future__ import annotations

import gc
import inspect
import itertools
import pydoc
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

import imcache
from imcache.api import Memory, PipeFunc
from imcache.api.pipefunc import interface_name
from tests.api.conftest import MRCAT
from tests.conftest import first_on_path, require_tool, run_json

Calls = Callable[[], int]


def test_a_second_identical_call_is_not_recomputed(counting_mrcat: Calls, pair: list[str]) -> None:
    concat = Memory().cache(MRCAT)
    first = concat(in_files=pair, axis=3)
    assert counting_mrcat() == 1 and not first.cached
    again = concat(in_files=tuple(Path(p) for p in pair), axis=3)  # other Python types, same job
    assert counting_mrcat() == 1 and again.cached
    assert again.key == first.key and again.outputs.out_file == first.outputs["out_file"]
    assert Path(first.outputs.out_file).is_file()
    forced = concat(in_files=pair, axis=3, force=True)
    assert counting_mrcat() == 2 and not forced.cached and forced.key == first.key


def test_the_callback_hears_each_call(counting_mrcat: Calls, pair: list[str]) -> None:
    heard: list[tuple[str, str]] = []
    concat = PipeFunc(MRCAT, imcache.Memory().base_dir, callback=lambda d, j: heard.append((d, j)))
    res = concat(in_files=pair)
    concat(in_files=pair)
    assert len(heard) == 2 and heard[0] == heard[1]
    dir_name, job_name = heard[0]
    assert job_name == res.key
    assert Path(dir_name) / job_name == Path(res.work_dir)
    assert Path(dir_name).name == MRCAT


def test_signature_has_one_keyword_only_parameter_per_input() -> None:
    concat = Memory().cache(MRCAT)
    parameters = inspect.signature(concat).parameters
    inputs = {spec.id for spec in concat.interface.inputs}
    assert set(parameters) == inputs | {"force"}
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert parameters["in_files"].default is inspect.Parameter.empty  # required
    assert parameters["out_file"].default == "concatenated.mif"
    assert parameters["in_files"].annotation == "list[str | os.PathLike[str]]"
    assert next(iter(parameters)) == "in_files"  # required inputs first


def test_help_shows_description_inputs_and_outputs() -> None:
    concat = Memory().cache(MRCAT)
    text = pydoc.render_doc(concat, renderer=pydoc.plaintext)
    assert "Concatenate several images into one" in text
    assert "Required inputs:" in text and "in_files (list[str | os.PathLike[str]])" in text
    assert "out_file (str, default='concatenated.mif')" in text
    assert "datatype (str, one of ['float32'" in text
    assert "axis (int, >= 0)" in text
    assert "Outputs" in text and "out_file" in text.split("Outputs", 1)[1]
    assert concat.__doc__ is not None and concat.__doc__.startswith("Concatenate")  # IPython's `?`


def test_repr_reads_like_nipypes() -> None:
    mem = Memory()
    assert repr(mem.cache(MRCAT)) == f"PipeFunc(mrtrix3.MRCat, base_dir={mem.base_dir!r})"


def test_nipype_classes_name_their_interface() -> None:
    from nipype.interfaces import fsl

    assert interface_name(fsl.Merge) == "fsl.Merge"
    assert interface_name("mrtrix3.MRCat") == "mrtrix3.MRCat"
    with pytest.raises(imcache.UsageError, match="neither an interface name"):
        interface_name(dict)


def test_a_nipype_class_is_the_same_interface_as_its_name(pair: list[str]) -> None:
    """Issue 15 item 8: Memory.cache(nipype's class), as the seed writes it, resolves to the same
    interface (and key) as its name: a built-in one, and one only nipype defines."""
    from nipype.interfaces import mrtrix3

    mem = Memory()
    by_class = mem.cache(mrtrix3.MRCat).plan(in_files=pair, axis=3)
    by_name = mem.cache("mrtrix3.MRCat").plan(in_files=pair, axis=3)
    assert by_class.key == by_name.key and by_class.argv == by_name.argv
    only_nipype = mem.cache(mrtrix3.DWIDenoise)
    assert repr(only_nipype).startswith("PipeFunc(mrtrix3.DWIDenoise,")
    assert "in_file" in inspect.signature(only_nipype).parameters
    with pytest.raises(imcache.UsageError, match="not a public command-line interface"):
        interface_name(mrtrix3.base.MRTrix3Base)


def test_plan_runs_nothing_and_tells_hit_or_miss(counting_mrcat: Calls, pair: list[str]) -> None:
    concat = Memory().cache(MRCAT)
    before = concat.plan(in_files=pair)
    assert not before.cached and counting_mrcat() == 0
    assert before.argv[0] == "mrcat" and before.argv[-1] == "concatenated.mif"
    assert not Path(before.work_dir).exists()
    res = concat(in_files=pair)
    after = concat.plan(in_files=pair)
    assert after.cached and after.key == before.key == res.key
    assert after.outputs.out_file == res.outputs.out_file


def test_errors_are_typed_and_never_system_exit(pair: list[str]) -> None:
    mem = Memory()
    with pytest.raises(imcache.UnknownInterfaceError):
        mem.cache("mrtrix3.NoSuchThing")
    concat = mem.cache(MRCAT)
    with pytest.raises(imcache.UsageError, match="axis must be >= 0"):
        concat(in_files=pair, axis=-2)
    with pytest.raises(imcache.UsageError, match="no input in_file"):
        concat(in_file=pair)
    assert issubclass(imcache.UsageError, imcache.ImcacheError)


def test_a_tool_failure_carries_exit_code_stderr_and_kept_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pair: list[str]
) -> None:
    script = "#!/bin/sh\necho 'first line' >&2\necho 'mrcat: cannot concatenate' >&2\nexit 7\n"
    first_on_path(tmp_path / "bin", monkeypatch, {"mrcat": script})
    concat = Memory().cache(MRCAT)
    with pytest.raises(imcache.ToolFailedError) as caught:
        concat(in_files=pair)
    error = caught.value
    assert error.tool_exit_code == 7
    assert error.stderr_tail == ("first line", "mrcat: cannot concatenate")
    assert error.kept_dir is not None and Path(error.kept_dir, "stderr.txt").is_file()
    assert not concat.plan(in_files=pair).cached  # nothing was cached


def test_a_thousand_hits_hold_no_growing_state(pair: list[str]) -> None:
    require_tool("mrcat")
    concat = Memory().cache(MRCAT)
    concat(in_files=pair)
    for _ in range(50):  # warm: first-use caches (regexes, imports) are made now
        concat(in_files=pair)
    tracemalloc.start()
    try:
        for _ in range(100):  # what one live result holds is traced from here on
            res = concat(in_files=pair)
        gc.collect()  # garbage in reference cycles is not state: count only what stays alive
        snapshots = [tracemalloc.take_snapshot()]
        for _ in range(2):
            for _ in range(1000):
                res = concat(in_files=pair)
            gc.collect()
            snapshots.append(tracemalloc.take_snapshot())
    finally:
        tracemalloc.stop()
    assert res.cached
    # Two windows of 1,000 hits each: state that grows with the hits grows in both, where a
    # one-time allocation (a first-use cache filled late on a loaded machine) shows in one only.
    windows = [
        after.compare_to(before, "lineno") for before, after in itertools.pairwise(snapshots)
    ]
    grown = [sum(stat.size_diff for stat in growth) for growth in windows]
    assert min(grown) < 16 * 1024, f"{grown} bytes more after each 1,000 hits: {windows[-1][:5]}"


def test_the_cli_and_python_hit_each_others_entries(counting_mrcat: Calls, pair: list[str]) -> None:
    cli = run_json("run", MRCAT, "--in-files", *pair)
    assert counting_mrcat() == 1
    res = Memory().cache(MRCAT)(in_files=pair)
    assert res.cached and res.key == cli["key"] and counting_mrcat() == 1
    other = Memory().cache(MRCAT)(in_files=pair, axis=3)
    assert not other.cached and counting_mrcat() == 2
    again = run_json("run", MRCAT, "--in-files", *pair, "--axis", "3")
    assert again["cached"] is True and again["key"] == other.key and counting_mrcat() == 2
