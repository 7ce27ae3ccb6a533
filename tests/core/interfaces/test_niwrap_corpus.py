"""imcache reads the NiWrap corpus (1555 real Boutiques 0.5+styx descriptors).

Every descriptor either loads or is refused with a `DefinitionError` naming its file; nothing else
may escape the loader. `pytest -s tests/core/interfaces/test_niwrap_corpus.py` shows the tally.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from imcache.core.errors import DefinitionError
from imcache.core.interfaces.loader import load_interface
from imcache.core.interfaces.registry import BUILTIN, find, list_all, resolve, search_path
from imcache.core.plan import RunRequest, plan_run

MIN_LOADED = 1490


def _descriptors(root: Path) -> list[tuple[str, Path]]:
    """(package.tool, path) for every `PACKAGE/VERSION/TOOL/boutiques.json`."""
    found = []
    for path in sorted(root.rglob("boutiques.json")):
        parts = path.relative_to(root).parts
        found.append((f"{parts[0]}.{parts[-2]}", path))
    return found


def _reason(error: DefinitionError) -> str:
    """The kind of refusal, without the names that differ from file to file."""
    problem = re.sub(r"\[[A-Za-z0-9_]+\]", "[KEY]", error.problem)
    problem = re.sub(r"'[^']*'", "'…'", problem)
    problem = re.sub(r"\d+", "N", problem)
    where = re.sub(r'\[\d+\]|\(id "[^"]*"\)|\s+', "", error.field)
    where = re.sub(r"\.?type\..*", ".type.…", where)  # inside a Styx sub-command
    return f"{where}: {problem}"


@dataclass
class Tally:
    loaded: list[str] = field(default_factory=list)
    refused: dict[str, DefinitionError] = field(default_factory=dict)
    crashed: dict[str, BaseException] = field(default_factory=dict)

    def report(self) -> str:
        reasons = Counter(_reason(error) for error in self.refused.values())
        lines = [
            f"NiWrap corpus: {len(self.loaded)} loaded, {len(self.refused)} refused, "
            f"{len(self.crashed)} crashed",
            *(f"  {count:4d}  {reason}" for reason, count in reasons.most_common()),
        ]
        return "\n".join(lines)


@pytest.fixture(scope="module")
def tally() -> Tally:
    from tests.conftest import NIWRAP

    if not NIWRAP.is_dir():
        pytest.skip(f"the NiWrap corpus is not at {NIWRAP}")
    result = Tally()
    for name, path in _descriptors(NIWRAP):
        try:
            load_interface(str(path), name)
        except DefinitionError as error:
            result.refused[str(path)] = error
        except Exception as error:
            result.crashed[str(path)] = error
        else:
            result.loaded.append(name)
    return result


def test_corpus_loads(tally: Tally, niwrap: Path) -> None:
    print("\n" + tally.report())
    assert len(_descriptors(niwrap)) == len(tally.loaded) + len(tally.refused) + len(tally.crashed)
    assert not tally.crashed, {path: repr(error) for path, error in tally.crashed.items()}
    assert len(tally.loaded) >= MIN_LOADED, tally.report()


def test_every_refusal_names_its_file_and_field(tally: Tally) -> None:
    for path, error in tally.refused.items():
        assert error.source == path
        assert str(error).startswith(f"{path}: "), str(error)
        assert error.field, f"{path}: the refusal names no field: {error}"
        assert error.field in str(error)


def test_refusals_are_real_defects(tally: Tally) -> None:
    """Spot checks that a refusal points at a genuine problem in the descriptor, not at imcache."""
    for path, error in tally.refused.items():
        data = json.loads(Path(path).read_text())
        if "is absolute" in error.problem or "climbs out" in error.problem:
            templates = [out["path-template"] for out in data.get("output-files", [])]
            assert any(t.startswith("/") or ".." in t.split("/") for t in templates), path
        if "is used twice" in error.problem:
            ids = [out["id"] for out in data.get("output-files", [])]
            assert len(ids) != len(set(ids)), path


@pytest.mark.parametrize(
    "name", ["fsl.fslmerge", "afni.3dTcat", "ants.antsRegistration", "mrtrix3tissue.ss3t_csd_beta1"]
)
def test_registry_resolves_corpus_names(name: str, niwrap: Path) -> None:
    path = find(name, [str(niwrap)]).path
    package, tool = name.split(".", 1)
    assert Path(path).parent.name == tool and Path(path).relative_to(niwrap).parts[0] == package
    interface = resolve(name, [str(niwrap)])
    assert interface.name == name
    assert interface.source == path


def test_registry_finds_every_corpus_descriptor(niwrap: Path) -> None:
    descriptors = _descriptors(niwrap)
    for name, path in descriptors:
        assert find(name, [str(niwrap)]).path == str(path), name
    listed = {found.name: found.path for found in list_all([str(niwrap)])}
    assert listed == {name: str(path) for name, path in descriptors}


def test_corpus_comes_before_the_builtin_catalogue(niwrap: Path) -> None:
    """IMCACHE_PATH is searched first; a name the corpus lacks falls through to the built-ins."""
    folders = search_path([], {"IMCACHE_PATH": f"{niwrap}:{niwrap / 'nowhere'}"})
    assert folders[0] == str(niwrap) and folders[-1] == BUILTIN
    assert resolve("fsl.Merge", folders).source == os.path.join(BUILTIN, "fsl", "Merge.json")
    assert resolve("fsl.fslmerge", folders).source.startswith(str(niwrap))


def test_fslmerge_argv_from_the_corpus(
    niwrap: Path,
    make_nifti: Callable[..., Path],
    isolated: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # fsl/6.0.4/fslmerge/boutiques.json: "fslmerge [MERGE_TIME] ... [OUTPUT_FILE] [INPUT_FILES] ..."
    monkeypatch.setenv("IMCACHE_PATH", str(niwrap))
    a, b = make_nifti("a.nii"), make_nifti("b.nii", seed=1)
    plan = plan_run(
        RunRequest(
            interface="fsl.fslmerge",
            words=["--merge-time", "--output-file", "merged", "--input-files", "a.nii", "b.nii"],
            base_dir=str(tmp_path / "base"),
            cwd=str(isolated),
            env=dict(os.environ),
        )
    )
    assert plan.interface.source == str(niwrap / "fsl" / "6.0.4" / "fslmerge" / "boutiques.json")
    assert plan.argv == ["fslmerge", "-t", "merged", str(a), str(b)]
    assert [(out.spec.id, out.path) for out in plan.outputs] == [("out_file", "merged.nii.gz")]
