"""Hostile and broken input (promise 6): bad definitions, hostile values and names, bad caches.

Each case of the table runs `imcache` once and checks what the user would see and what the
machine would suffer:

- the documented exit code (0 ok, 1 user error, 2 bad usage, never 3: that is a crash);
- on failure, ONE line on stderr (`imcache: error: ...`) that names the culprit, with no raw
  control character in it (a file name with a newline must not make a second line);
- no traceback anywhere;
- nothing ran that must not run: every definition of the test catalogue runs `touch MARKER`
  (a fixed absolute path) and the `mrcat` on PATH is a fake that touches the same marker, unless
  the case runs the real, counted `mrcat`; hostile values also try to touch the marker;
- nothing outside the cache root changed: the names, modes, sizes and mtimes of every file of
  the case's folder are the same before and after (the cache root itself is left out).

Cases that must hold against file permissions (unreadable inputs, unwritable caches) run as a
real process under uid 65534 when the tests run as root, which permissions do not stop; then
their files live in a world-traversable folder of their own. Without root, plain chmod works.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from imcache.cli.main import cli
from tests.conftest import require_tool

NOBODY = 65534
AS_NOBODY = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
MISSING_TOOL = "imcache-test-no-such-program"
NOT_UTF8 = os.fsdecode(b"caf\xe9")  # a Linux file name that is not UTF-8: 'caf\udce9'
NOT_UTF8_OUT = os.fsdecode(b"\xe9.nii")
LONG = "v" * 100_000
CONTROL = "a\x1b[31m\x07\tb\rc\x7f\x0bd\x1b]0;title\x07"
DEEP = "[" * 100_000  # nested far beyond Python's recursion limit


# --- where a case lives -----------------------------------------------------------------------


@dataclass
class Ctx:
    """Every file of one case lives below `root`; `fill` puts paths into templates."""

    root: Path
    as_user: bool
    make_nifti: Callable[..., Path]
    cleanups: list[Callable[[], None]]

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def base(self) -> Path:
        return self.root / "base"

    @property
    def cache_root(self) -> Path:
        return self.base / "imcache_mem"

    @property
    def catalogue(self) -> Path:
        return self.root / "catalogue"

    @property
    def spill(self) -> Path:
        """World-writable, so that a tool run by uid 65534 could leave the marker here."""
        return self.root / "spill"

    @property
    def marker(self) -> Path:
        return self.spill / "MARKER"

    @property
    def bin(self) -> Path:
        return self.root / "fakebin"

    def fill(self, text: str) -> str:
        return text.replace("{marker}", str(self.marker)).replace("{root}", str(self.root))


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: bytes
    stderr: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.stdout)


Setup = Callable[[Ctx], None]
Check = Callable[[Ctx, Outcome], None]


@dataclass(frozen=True)
class Case:
    args: Sequence[str] | Callable[[Ctx], list[str]]
    code: int
    says: tuple[str, ...] = ()  # in the error line ({marker} and {root} are filled in)
    setup: Setup | None = None  # runs before the snapshot
    check: Check | None = None  # runs after the common checks
    quiet: bool = True  # stderr is the error line alone (False: a run started, or mrcat talked)
    proc: bool = False  # a real process: bytes on the command line, no lock kept in pytest
    drop: bool = False  # permissions must bind: as root, run as uid 65534
    read_only: bool = False  # after setup the cache root becomes read-only
    mrcat: int | None = None  # runs the real (counted) mrcat this many times
    env: Mapping[str, str] = field(default_factory=dict)


# --- the test catalogue -----------------------------------------------------------------------


def _input(input_id: str, kind: str = "String", **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": input_id,
        "name": input_id,
        "type": kind,
        "optional": True,
        "value-key": f"[{input_id.upper()}]",
    }
    spec.update(extra)
    return spec


def marker_definition(ctx: Ctx) -> dict[str, Any]:
    """`test.Marker` runs `touch MARKER ...`: if it ever runs, the marker exists."""
    return {
        "name": "touch",
        "tool-version": "1.0",
        "schema-version": "0.5",
        "description": "leaves a marker if it ever runs",
        "command-line": f"touch {ctx.marker} [WORD] [NUM] [FLAG] [FILES]",
        "inputs": [
            _input("word"),
            _input("num", "Number", **{"command-line-flag": "-n"}),
            _input("flag", "Flag", **{"command-line-flag": "-f"}),
            _input("files", "File", list=True),
        ],
        "output-files": [],
    }


def _edited(edit: Callable[[dict[str, Any]], object]) -> Callable[[Ctx], dict[str, Any]]:
    """The marker definition with one hostile edit (`edit` changes it in place)."""

    def make(ctx: Ctx) -> dict[str, Any]:
        data = marker_definition(ctx)
        edit(data)
        return data

    return make


def _printing(value_key: str, **extra: Any) -> Callable[[Ctx], dict[str, Any]]:
    """`printf %s VALUES`, its stdout captured as the output `printed`: no marker, no shell."""

    def make(ctx: Ctx) -> dict[str, Any]:
        return {
            "name": "printf",
            "schema-version": "0.5",
            "command-line": f"printf %s [{value_key}]",
            "inputs": [_input(value_key.lower(), list=True, optional=False, **extra)],
            "output-files": [],
            "stdout-output": {"id": "printed", "name": "printed"},
        }

    return make


def _sub_definition(ctx: Ctx) -> dict[str, Any]:
    """A Styx sub-command input, whose value is a JSON object given on the command line."""
    variant = {
        "id": "fast",
        "command-line": "fast [LEVEL]",
        "inputs": [_input("level", "Number", optional=False)],
    }
    return {
        "name": "touch",
        "schema-version": "0.5",
        "command-line": f"touch {ctx.marker} [MODE]",
        "inputs": [_input("mode", variant)],
        "output-files": [],
    }


def _set(path: Sequence[str | int], value: object) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target: Any = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _output(template: str) -> Callable[[dict[str, Any]], None]:
    return _set(["output-files"], [{"id": "result", "name": "result", "path-template": template}])


DefinitionMaker = Callable[[Ctx], "dict[str, Any] | bytes"]

DEFINITIONS: dict[str, DefinitionMaker] = {
    "Marker": marker_definition,
    "Echo": _printing("WORDS"),
    "Csv": _printing("CSV", **{"list-separator": ","}),
    "Sub": _sub_definition,
    "Missing": _edited(
        lambda d: d.update({"command-line": d["command-line"].replace("touch", MISSING_TOOL, 1)})
    ),
    "NoInterpreter": _edited(
        lambda d: d.update({"command-line": d["command-line"].replace("touch", "no-interp", 1)})
    ),
    # broken definitions: each must be refused when it loads, naming the file and the field
    "Truncated": lambda ctx: json.dumps(marker_definition(ctx)).encode()[:150],
    "TopList": lambda ctx: b'["touch", "[WORD]"]\n',
    "InputsText": _edited(_set(["inputs"], "x")),
    "OptionalYes": _edited(_set(["inputs", 0, "optional"], "yes")),
    "ListThree": _edited(_set(["inputs", 3, "list"], 3)),
    "IdSpaces": _edited(_set(["inputs", 0, "id"], "in word")),
    "CommandNumber": _edited(_set(["command-line"], 42)),
    "UnknownKey": _edited(_set(["imputs"], [])),
    "Climbing": _edited(_output("../../../../spill/escaped.txt")),
    "Absolute": lambda ctx: _edited(_output(f"{ctx.spill}/escaped.txt"))(ctx),
    "Home": _edited(_output("~/escaped.txt")),
    "NotUtf8": lambda ctx: (
        json.dumps(marker_definition(ctx)).encode().replace(b"touch", b"t\xffch")
    ),
    "Deep": lambda ctx: DEEP.encode(),
    "BadFormat": _edited(_set(["custom"], {"imcache": {"formats": {"num": "%d %d"}}})),
    "NulCommand": _edited(lambda d: d.update({"command-line": d["command-line"] + " a\0b"})),
    "NulEnv": _edited(_set(["environment-variables"], [{"name": "X", "value": "a\0b"}])),
    "FarIndex": _edited(_set(["custom"], {"imcache": {"defaults": {"word": "{files[3]|stem}"}}})),
}


# --- setups and checks ------------------------------------------------------------------------


def _write_catalogue(ctx: Ctx) -> None:
    package = ctx.catalogue / "test"
    package.mkdir(parents=True)
    for name, make in DEFINITIONS.items():
        content = make(ctx)
        data = content if isinstance(content, bytes) else json.dumps(content, indent=1).encode()
        (package / f"{name}.json").write_bytes(data)


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _prepare(ctx: Ctx, fake_mrcat: bool) -> None:
    for folder in (ctx.work, ctx.base, ctx.spill, ctx.bin, ctx.root / "home"):
        folder.mkdir(parents=True, exist_ok=True)
    for folder in (ctx.spill, ctx.root / "home"):
        folder.chmod(0o777)
    _write_catalogue(ctx)
    if fake_mrcat:
        _executable(ctx.bin / "mrcat", f"#!/bin/sh\ntouch '{ctx.marker}'\n")
    _executable(ctx.bin / "no-interp", "#!/nonexistent/interpreter\n")
    for name in ("a.nii", "b.nii"):
        (ctx.work / name).write_bytes(b"not really an image\n")


def _niftis(*names: str) -> Setup:
    """Real NIfTI volumes made by `make_nifti`, then renamed to hostile names."""

    def setup(ctx: Ctx) -> None:
        for seed, name in enumerate(names):
            made = ctx.make_nifti(f"made-{seed}.nii", seed=seed, folder=ctx.work)
            os.rename(made, ctx.work / name)

    return setup


def _fifo(ctx: Ctx) -> None:
    os.mkfifo(ctx.work / "fifo")


def _loop(ctx: Ctx) -> None:
    os.symlink("loop-b", ctx.work / "loop-a")
    os.symlink("loop-a", ctx.work / "loop-b")


def _many(ctx: Ctx) -> None:
    folder = ctx.work / "many"
    folder.mkdir()
    for index in range(5000):
        (folder / f"f{index:04d}.nii").write_bytes(b"x")


def _many_args(ctx: Ctx) -> list[str]:
    names = sorted(str(p.relative_to(ctx.work)) for p in (ctx.work / "many").iterdir())
    return ["run", "mrtrix3.MRCat", "--in-files", *names, "--dry-run", "--json"]


def _unreadable_input(ctx: Ctx) -> None:
    (ctx.work / "secret.nii").write_bytes(b"secret\n")
    (ctx.work / "secret.nii").chmod(0o000)


def _unreadable_inside(ctx: Ctx) -> None:
    folder = ctx.work / "series"
    folder.mkdir()
    (folder / "ok.dcm").write_bytes(b"fine\n")
    (folder / "secret.dcm").write_bytes(b"secret\n")
    (folder / "secret.dcm").chmod(0o000)


def _unreadable_definition(ctx: Ctx) -> None:
    (ctx.catalogue / "test" / "Marker.json").chmod(0o000)


def _unwritable_base(ctx: Ctx) -> None:
    ctx.base.chmod(0o555)


def _regular_file_base(ctx: Ctx) -> None:
    (ctx.root / "plain-file").write_text("not a folder\n")


def _fill(ctx: Ctx, *words: str) -> None:
    """Fill the cache with one real run (a separate process: no lock stays open in pytest)."""
    run = ["--interfaces", str(ctx.catalogue), "run", "test.Echo", "--words", *words, "--json"]
    done = _subprocess(ctx, run, as_user=False, env=_env(ctx, {}))
    assert done.code == 0, done.stderr
    assert done.json()["cached"] is False


def _filled(ctx: Ctx) -> None:
    _fill(ctx, "kept")


def _filled_then_linked(ctx: Ctx) -> None:
    """A filled cache moved elsewhere, and `imcache_mem` made a symbolic link to it."""
    _fill(ctx, "kept")
    elsewhere = ctx.root / "elsewhere"
    os.rename(ctx.cache_root, elsewhere)
    os.symlink(elsewhere, ctx.cache_root)


def _linked(ctx: Ctx) -> None:
    elsewhere = ctx.root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("must stay as it is\n")
    os.symlink(elsewhere, ctx.cache_root)


def _argv(*expected: str) -> Check:
    """The dry run's argv is exactly this: each hostile value one whole word."""

    def check(ctx: Ctx, out: Outcome) -> None:
        assert out.json()["argv"] == [ctx.fill(word) for word in expected]

    return check


def _argv_has(word: str) -> Check:
    def check(ctx: Ctx, out: Outcome) -> None:
        assert out.json()["argv"].count(word) == 1

    return check


def _printed(*values: str) -> Check:
    """printf got each value as it is: nothing was split, expanded or run by a shell."""

    def check(ctx: Ctx, out: Outcome) -> None:
        result = out.json()
        assert result["argv"] == ["printf", "%s", *(ctx.fill(v) for v in values)]
        printed = Path(result["outputs"]["printed"]).read_text()
        assert printed == "".join(ctx.fill(v) for v in values)

    return check


def _many_checked(ctx: Ctx, out: Outcome) -> None:
    argv = out.json()["argv"]
    assert len(argv) == 5002  # mrcat, the 5000 files, the default output name
    assert all(word.startswith(str(ctx.work / "many")) for word in argv[1:-1])
    assert out.seconds < 20, f"5000 inputs took {out.seconds:.1f} s"


def _quick(ctx: Ctx, out: Outcome) -> None:
    assert out.seconds < 20, "a special file must be refused, not read"


def _no_complete_entry(ctx: Ctx, out: Outcome) -> None:
    assert list(ctx.cache_root.glob("*/*/imcache.json")) == []


def _hit(ctx: Ctx, out: Outcome) -> None:
    result = out.json()
    assert result["cached"] is True
    assert Path(result["outputs"]["printed"]).read_text() == "kept"


def _dry_missing_tool(ctx: Ctx, out: Outcome) -> None:
    report = out.json()
    assert report["tool"] is None
    assert report["argv"] == [MISSING_TOOL, str(ctx.marker), "x"]


def _listed(ctx: Ctx, out: Outcome) -> None:
    names = [line.split()[0] for line in out.stdout.decode().splitlines() if line.strip()]
    assert "test.Marker" in names and "mrtrix3.MRCat" in names


def _merged(*inputs: str, output: str = "merged.nii") -> Check:
    """mrcat ran once on the hostile names: each given as its absolute path, output loadable."""

    def check(ctx: Ctx, out: Outcome) -> None:
        import nibabel as nib

        result = out.json()
        for name in inputs:
            assert str(ctx.work / name) in result["argv"]
        path = Path(result["outputs"]["out_file"])
        assert path.name == output
        assert path.parent == Path(result["work_dir"])
        image: Any = nib.load(str(path))
        assert image.shape == (4, 4, 3, len(inputs))

    return check


def _printed_raw_path(ctx: Ctx, out: Outcome) -> None:
    """`--get` printed the output's real path, bytes as they are on disk."""
    import nibabel as nib

    path = out.stdout.rstrip(b"\n")
    assert path.endswith(b"/\xe9.nii")
    assert os.path.isfile(path)
    image: Any = nib.load(os.fsdecode(path))
    assert image.shape == (4, 4, 3, 2)


# --- the table --------------------------------------------------------------------------------

MARK = ["run", "test.Marker"]
MRCAT = ["run", "mrtrix3.MRCat"]
DRY = ["--dry-run", "--json"]
MERGE = ["run", "mrtrix3.MRCat", "--axis", "3", "--out-file", "merged.nii", "--json"]
PAIR = ["run", "mrtrix3.MRCat", "--axis", "3", "--in-files", "a.nii", "b.nii"]
ECHO_VALUES = ("x; touch {marker}", "$(touch {marker})", "`touch {marker}`", "*", "-rf", "a b")

CASES: dict[str, Case] = {
    # -- definitions that must be refused when they load (exit 1, the file and the field) --
    "definition: truncated JSON": Case(
        ["run", "test.Truncated"], 1, ("Truncated.json", "not valid JSON")
    ),
    "definition: a list, not an object": Case(
        ["run", "test.TopList"], 1, ("TopList.json", "(top level)", "JSON object")
    ),
    "definition: inputs is a string": Case(
        ["run", "test.InputsText"], 1, ("InputsText.json", "inputs", "must be a list")
    ),
    "definition: optional is 'yes'": Case(
        ["run", "test.OptionalYes", "--word", "x"],
        1,
        ("OptionalYes.json", "optional", "true or false"),
    ),
    "definition: list is 3": Case(
        ["run", "test.ListThree"], 1, ("ListThree.json", ".list", "true or false")
    ),
    "definition: an id with spaces": Case(
        ["run", "test.IdSpaces", "--word", "x"],
        1,
        ("IdSpaces.json", "id", "in word"),
    ),
    "definition: command-line is a number": Case(
        ["run", "test.CommandNumber"], 1, ("CommandNumber.json", "command-line", "a string")
    ),
    "definition: unknown top-level key": Case(
        ["run", "test.UnknownKey"], 1, ("UnknownKey.json", "imputs", "did you mean 'inputs'")
    ),
    "definition: output template climbs out": Case(
        ["run", "test.Climbing", "--word", "x"], 1, ("Climbing.json", "path-template", "'..'")
    ),
    "definition: absolute output template": Case(
        ["run", "test.Absolute", "--word", "x"], 1, ("Absolute.json", "path-template", "absolute")
    ),
    "definition: output template under ~": Case(
        ["run", "test.Home", "--word", "x"], 1, ("Home.json", "'~/escaped.txt'", "absolute")
    ),
    "definition: not UTF-8": Case(["run", "test.NotUtf8"], 1, ("NotUtf8.json", "UTF-8")),
    "definition: JSON nested 100000 deep": Case(
        ["run", "test.Deep"],
        1,
        ("Deep.json",),
    ),
    "definition: a printf format that does not fit": Case(
        ["run", "test.BadFormat", "--num", "3"],
        1,
        ("BadFormat.json", "formats"),
    ),
    "definition: NUL in the command line": Case(
        ["run", "test.NulCommand", "--word", "x"],
        1,
        ("NulCommand.json", "command-line"),
    ),
    "definition: NUL in an environment variable": Case(
        ["run", "test.NulEnv", "--word", "x"],
        1,
        ("NulEnv.json", "environment-variables"),
    ),
    "definition: a default naming a list item not given": Case(
        ["run", "test.FarIndex", "--files", "a.nii", *DRY],
        0,
        check=_argv("touch", "{marker}", "{root}/work/a.nii"),
    ),
    "interfaces: a catalogue holding a definition nested 100000 deep": Case(
        ["interfaces"],
        0,
        check=_listed,
    ),
    # -- hostile values: each stays one argv word, and no shell ever sees it --
    "value: shell separator": Case(
        [*MARK, "--word", "x; touch {marker}", *DRY],
        0,
        check=_argv("touch", "{marker}", "x; touch {marker}"),
    ),
    "value: command substitution": Case(
        [*MARK, "--word", "$(touch {marker})", *DRY],
        0,
        check=_argv("touch", "{marker}", "$(touch {marker})"),
    ),
    "value: backticks and a glob": Case(
        [*MARK, "--word", "`touch {marker}` *", *DRY],
        0,
        check=_argv("touch", "{marker}", "`touch {marker}` *"),
    ),
    "value: an option of the tool (--word=--out-file=/etc/x)": Case(
        [*MARK, "--word=--out-file=/etc/x", *DRY],
        0,
        check=_argv("touch", "{marker}", "--out-file=/etc/x"),
    ),
    "value: -rf": Case([*MARK, "--word", "-rf", *DRY], 0, check=_argv("touch", "{marker}", "-rf")),
    "value: empty string": Case(
        [*MARK, "--word", "", *DRY], 0, check=_argv("touch", "{marker}", "")
    ),
    "value: control characters": Case(
        [*MARK, "--word", CONTROL, *DRY], 0, check=_argv("touch", "{marker}", CONTROL)
    ),
    "value: 100000 characters": Case(
        [*MARK, "--word", LONG, *DRY], 0, check=_argv("touch", "{marker}", LONG)
    ),
    "value: a value-key of the same definition": Case(
        [*MARK, "--word", "[NUM]", "--num", "3", *DRY],
        0,
        check=_argv("touch", "{marker}", "[NUM]", "-n", "3"),
    ),
    "values: really run, never through a shell": Case(
        ["run", "test.Echo", "--words", *ECHO_VALUES, "--json"],
        0,
        quiet=False,
        check=_printed(*ECHO_VALUES),
    ),
    # -- numbers --
    "number: 1e400": Case([*MARK, "--num", "1e400"], 2, ("--num", "'1e400'")),
    "number: NaN": Case([*MARK, "--num", "NaN"], 2, ("--num", "'NaN'")),
    "number: -inf": Case([*MARK, "--num", "-inf"], 2, ("--num", "'-inf'")),
    "number: 5000 digits": Case([*MARK, "--num", "9" * 5000], 2, ("--num", "9999")),
    "number: 99999999999999999999999 threads": Case(
        [*MRCAT, "--in-files", "a.nii", "--nthreads", "99999999999999999999999", *DRY],
        0,
        check=_argv_has("99999999999999999999999"),
    ),
    "number: a Styx value nested 100000 deep": Case(
        ["run", "test.Sub", "--mode", DEEP],
        2,
        ("--mode",),
    ),
    # -- inputs and options --
    "option: a name with a newline": Case(
        [*MRCAT, "--in-files\nx", "a.nii"],
        2,
        ("no option",),
    ),
    "input: a missing file named with control characters": Case(
        [*MRCAT, "--in-files", "gone\n\x1b[2Jfile.nii"],
        2,
        ("--in-files", "no such file"),
    ),
    "input: empty file name": Case([*MRCAT, "--in-files", ""], 2, ("--in-files", "''")),
    "input: a file name of 100000 characters": Case(
        [*MRCAT, "--in-files", LONG], 2, ("--in-files", "too long")
    ),
    "input: a FIFO": Case(
        [*MARK, "--files", "fifo"],
        2,
        ("'fifo'", "neither a regular file nor a folder"),
        setup=_fifo,
        proc=True,
        check=_quick,
    ),
    "input: /dev/zero": Case(
        [*MARK, "--files", "/dev/zero"],
        2,
        ("'/dev/zero'", "neither a regular file nor a folder"),
        proc=True,
        check=_quick,
    ),
    "input: a symbolic link loop": Case(
        [*MARK, "--files", "loop-a"], 2, ("'loop-a'", "cannot be read"), setup=_loop
    ),
    "input: 5000 files in a dry run": Case(_many_args, 0, setup=_many, check=_many_checked),
    "input: one word too long for the kernel": Case(
        ["run", "test.Csv", "--csv", *(["x" * 40] * 5000)],
        1,
        ("test.Csv", "too long", "128 KiB"),
        quiet=False,
        check=_no_complete_entry,
    ),
    "input: an unreadable file": Case(
        [*MARK, "--files", "secret.nii"],
        2,
        ("'secret.nii'", "permission denied"),
        setup=_unreadable_input,
        drop=True,
    ),
    "input: an unreadable file inside an input folder": Case(
        [*MARK, "--files", "series"],
        2,
        ("secret.dcm", "Permission denied"),
        setup=_unreadable_inside,
        drop=True,
    ),
    "definition: unreadable": Case(
        [*MARK, "--word", "x"],
        1,
        ("Marker.json", "cannot read"),
        setup=_unreadable_definition,
        drop=True,
    ),
    "interface name: climbing with dots": Case(["run", "test..."], 2, ("'test...'",)),
    # -- the cache root --
    "cache: an unwritable cache root": Case(
        [*MARK, "--word", "x"],
        1,
        ("{root}/base/imcache_mem", "cannot write"),
        setup=_unwritable_base,
        drop=True,
    ),
    "cache: read-only, a miss": Case(
        [*MARK, "--word", "x"],
        1,
        ("{root}/base/imcache_mem", "writable"),
        setup=_filled,
        read_only=True,
        proc=True,
    ),
    "cache: read-only, a hit": Case(
        ["run", "test.Echo", "--words", "kept", "--json"],
        0,
        quiet=False,
        setup=_filled,
        read_only=True,
        proc=True,
        check=_hit,
    ),
    "cache: read-only, --force": Case(
        ["run", "test.Echo", "--words", "kept", "--force"],
        1,
        ("{root}/base/imcache_mem",),
        setup=_filled,
        read_only=True,
        proc=True,
    ),
    "cache: the root is a symbolic link, a miss": Case(
        [*MARK, "--word", "x"], 1, ("{root}/base/imcache_mem", "symbolic link"), setup=_linked
    ),
    "cache: the root is a symbolic link, a hit": Case(
        ["run", "test.Echo", "--words", "kept"],
        1,
        ("{root}/base/imcache_mem", "symbolic link"),
        setup=_filled_then_linked,
        proc=True,
    ),
    "cache: --base-dir is a regular file": Case(
        ["--base-dir", "{root}/plain-file", *MARK, "--word", "x"],
        2,
        ("--base-dir", "plain-file", "is a file"),
        setup=_regular_file_base,
    ),
    "cache: IMCACHE_BASE_DIR is a regular file": Case(
        [*MARK, "--word", "x"],
        2,
        ("plain-file", "is a file"),
        setup=_regular_file_base,
        env={"IMCACHE_BASE_DIR": "{root}/plain-file"},
    ),
    # -- tools --
    "tool: missing, in a dry run": Case(
        ["run", "test.Missing", "--word", "x", *DRY], 0, check=_dry_missing_tool
    ),
    "tool: cannot start (no interpreter)": Case(
        ["run", "test.NoInterpreter", "--word", "x"],
        1,
        ("no-interp", "test.NoInterpreter", "cannot start"),
        quiet=False,
        check=_no_complete_entry,
    ),
    # -- hostile file names, for real through mrcat --
    "file name: spaces": Case(
        [*MERGE, "--in-files", "my image.nii", "b c.nii"],
        0,
        setup=_niftis("my image.nii", "b c.nii"),
        mrcat=1,
        quiet=False,
        check=_merged("my image.nii", "b c.nii"),
    ),
    "file name: a newline": Case(
        [*MERGE, "--in-files", "new\nline.nii", "b.nii"],
        0,
        setup=_niftis("new\nline.nii", "b.nii"),
        mrcat=1,
        quiet=False,
        check=_merged("new\nline.nii", "b.nii"),
    ),
    "file name: a leading dash": Case(
        [*MERGE, "--in-files", "-rf.nii", "-axis.nii"],
        0,
        setup=_niftis("-rf.nii", "-axis.nii"),
        mrcat=1,
        quiet=False,
        check=_merged("-rf.nii", "-axis.nii"),
    ),
    "file name: a leading --": Case(
        [*MERGE, "--in-files=--help.nii", "b.nii"],
        0,
        setup=_niftis("--help.nii", "b.nii"),
        mrcat=1,
        quiet=False,
        check=_merged("--help.nii", "b.nii"),
    ),
    "file name: not UTF-8": Case(
        [*MERGE, "--in-files", f"{NOT_UTF8}.nii", "b.nii"],
        0,
        setup=_niftis(f"{NOT_UTF8}.nii", "b.nii"),
        mrcat=1,
        quiet=False,
        proc=True,
        check=_merged(f"{NOT_UTF8}.nii", "b.nii"),
    ),
    "output name: a space and a newline": Case(
        [*PAIR, "--json", "--out-file", "m e\nd.nii"],
        0,
        setup=_niftis("a.nii", "b.nii"),
        mrcat=1,
        quiet=False,
        check=_merged("a.nii", "b.nii", output="m e\nd.nii"),
    ),
    "output name: a leading dash": Case(
        [*PAIR, "--json", "--out-file", "-x.nii"],
        0,
        setup=_niftis("a.nii", "b.nii"),
        mrcat=1,
        quiet=False,
        check=_merged("a.nii", "b.nii", output="-x.nii"),
    ),
    "output name: not UTF-8, with a strict stdout": Case(
        [*PAIR, "--get", "out_file", "--out-file", NOT_UTF8_OUT],
        0,
        setup=_niftis("a.nii", "b.nii"),
        mrcat=1,
        quiet=False,
        proc=True,
        env={"PYTHONIOENCODING": "utf-8"},
        check=_printed_raw_path,
    ),
}


# --- running a case ---------------------------------------------------------------------------


def _snapshot(root: Path, skip: set[Path]) -> dict[str, tuple[int, int, int]]:
    """Every path below `root` but those in `skip`: mode, and size and mtime of non-folders."""
    found: dict[str, tuple[int, int, int]] = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [name for name in dirs if here / name not in skip]
        for name in [*dirs, *files]:
            path = here / name
            if path in skip:
                continue
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode):
                found[str(path.relative_to(root))] = (info.st_mode, 0, 0)
            else:
                found[str(path.relative_to(root))] = (
                    info.st_mode,
                    info.st_size,
                    info.st_mtime_ns,
                )
    return found


def _env(ctx: Ctx, extra: Mapping[str, str]) -> dict[str, str]:
    """What the case's imcache sees over the test's environment: fake tools first on PATH."""
    env = {"PATH": f"{ctx.bin}{os.pathsep}{os.environ['PATH']}", "IMCACHE_BASE_DIR": str(ctx.base)}
    if ctx.as_user:
        env["HOME"] = str(ctx.root / "home")
        env["XDG_STATE_HOME"] = str(ctx.root / "home" / "state")
        env["XDG_CACHE_HOME"] = str(ctx.root / "home" / "cache")
    env.update({name: ctx.fill(value) for name, value in extra.items()})
    return env


def _subprocess(ctx: Ctx, words: list[str], as_user: bool, env: Mapping[str, str]) -> Outcome:
    """imcache as a real process (as uid 65534 if `as_user`), `env` over the test's own."""
    prefix: list[str] = []
    if as_user:
        prefix = AS_NOBODY
    started = time.monotonic()
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "imcache", *words],
        cwd=ctx.work,
        env={**os.environ, **env},
        capture_output=True,
        timeout=120,
        check=False,
    )
    seconds = time.monotonic() - started
    return Outcome(done.returncode, done.stdout, done.stderr.decode(errors="replace"), seconds)


def _in_process(words: list[str], env: dict[str, str]) -> Outcome:
    started = time.monotonic()
    result = CliRunner().invoke(cli, words, env=env)
    seconds = time.monotonic() - started
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\nTraceback (in process): {result.exception!r}"
    return Outcome(result.exit_code, result.stdout_bytes, stderr, seconds)


def _is_root() -> bool:
    return os.geteuid() == 0


@functools.cache
def _can_bind_mount() -> bool:
    """A read-only bind mount needs root and CAP_SYS_ADMIN, which containers often lack."""
    if not _is_root() or shutil.which("mount") is None:
        return False
    folder = tempfile.mkdtemp(prefix="imcache-mount-probe-")
    try:
        first = subprocess.run(["mount", "--bind", folder, folder], capture_output=True)
        if first.returncode != 0:
            return False
        second = subprocess.run(["mount", "-o", "remount,ro,bind", folder], capture_output=True)
        subprocess.run(["umount", folder], capture_output=True)
        return second.returncode == 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@functools.cache
def _nobody_can_run_imcache() -> str:
    """Why imcache cannot run as uid 65534 here ("" when it can)."""
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    folder = tempfile.mkdtemp(prefix="imcache-nobody-probe-")
    try:
        os.chmod(folder, 0o755)
        probe = subprocess.run(
            [*AS_NOBODY, sys.executable, "-c", "import imcache.cli.main"],
            cwd=folder,
            capture_output=True,
            text=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return "" if probe.returncode == 0 else f"python cannot import imcache: {probe.stderr}"


def _make_read_only(ctx: Ctx) -> None:
    """A bind mount when root can mount; otherwise write permission off (binding uid 65534)."""
    root = str(ctx.cache_root)
    if _is_root() and not ctx.as_user:
        subprocess.run(["mount", "--bind", root, root], check=True)
        ctx.cleanups.append(lambda: _unmount(root))
        subprocess.run(["mount", "-o", "remount,ro,bind", root], check=True)
        return
    for folder, _dirs, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        os.chmod(folder, 0o555)


def _unmount(root: str) -> None:
    for _ in range(20):
        if subprocess.run(["umount", root], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    subprocess.run(["umount", "-l", root], check=False)


def _restore_permissions(root: Path) -> None:
    """Give the owner back every right, so that the folder can be removed."""
    for folder, dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in [*files, *dirs]:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | stat.S_IRWXU)


@pytest.fixture
def cleanups() -> Iterator[list[Callable[[], None]]]:
    actions: list[Callable[[], None]] = []
    yield actions
    for action in reversed(actions):
        action()


def _world_folder(cleanups: list[Callable[[], None]]) -> Path:
    """A folder of its own that uid 65534 can traverse (pytest's tmp_path is 0700 as root)."""
    folder = Path(tempfile.mkdtemp(prefix="imcache-hostile-"))
    folder.chmod(0o755)
    cleanups.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    return folder


def _params() -> list[Any]:
    return [pytest.param(case, id=name) for name, case in CASES.items()]


@pytest.mark.parametrize("case", _params())
def test_hostile(
    case: Case,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    cleanups: list[Callable[[], None]],
) -> None:
    as_user = _is_root() and (case.drop or (case.read_only and not _can_bind_mount()))
    if as_user and _nobody_can_run_imcache():
        pytest.skip(f"cannot run as uid {NOBODY}: {_nobody_can_run_imcache()}")
    calls: Callable[[], int] | None = None
    if case.mrcat is not None:
        require_tool("mrcat")
        calls = request.getfixturevalue("counting_mrcat")
    make_nifti: Callable[..., Path] = request.getfixturevalue("make_nifti")
    root = _world_folder(cleanups) if as_user else tmp_path
    if not _is_root():
        cleanups.append(lambda: _restore_permissions(root))
    ctx = Ctx(root=root, as_user=as_user, make_nifti=make_nifti, cleanups=cleanups)
    _prepare(ctx, fake_mrcat=case.mrcat is None)
    if case.setup is not None:
        case.setup(ctx)
    if case.read_only:
        _make_read_only(ctx)

    # nipype's derived descriptions are a per-user cache of their own (docs/interfaces.md)
    user_caches = {Path(os.environ["XDG_CACHE_HOME"]), ctx.root / "home" / "cache"}
    skip = {ctx.cache_root, tmp_path / "mrcat-calls", *user_caches}
    before = _snapshot(ctx.root, skip)
    args = case.args(ctx) if callable(case.args) else [ctx.fill(word) for word in case.args]
    words = ["--interfaces", str(ctx.catalogue), *args]
    env = _env(ctx, case.env)
    real = case.proc or as_user
    out = _subprocess(ctx, words, as_user, env) if real else _in_process(words, env)
    after = _snapshot(ctx.root, skip)

    assert "Traceback" not in out.stderr
    assert b"Traceback" not in out.stdout
    assert "internal error" not in out.stderr, out.stderr
    assert out.code == case.code, out.stderr[-2000:]
    lines = out.stderr.splitlines()
    if case.code == 0:
        assert not any(line.startswith("imcache: error:") for line in lines), out.stderr
    else:
        errors = [line for line in lines if line.startswith("imcache: error:")]
        assert len(errors) == 1, out.stderr[-2000:]
        assert lines[-1] == errors[0], "the error line comes last"
        if case.quiet:
            assert len(lines) == 1, out.stderr[-2000:]
        shown = [ch for ch in errors[0] if unicodedata.category(ch) == "Cc"]
        assert shown == [], f"raw control characters in the error line: {shown!r}"
        for culprit in case.says:
            assert ctx.fill(culprit) in errors[0], errors[0][:2000]
        assert out.stdout == b""
    assert not ctx.marker.exists(), "something ran that must not run"
    if calls is not None:
        assert calls() == case.mrcat
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"changed outside the cache root: {changed[:20]}"
    if case.check is not None:
        case.check(ctx, out)


def test_every_case_is_new() -> None:
    """The table holds at least 30 cases, none of them one of test_errors.py's."""
    from tests.cli.test_errors import CASES as EXISTING

    assert len(CASES) >= 30
    existing = {tuple(case.args) for case in EXISTING.values()}
    ours = {tuple(case.args) for case in CASES.values() if not callable(case.args)}
    assert not existing & ours
