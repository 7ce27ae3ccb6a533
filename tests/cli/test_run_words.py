"""run_words, the one grammar of `imcache run`'s words: over random words, orders and
spellings it gives what click's own parser gives, or hands over (None) where click refuses
the words; fast.py's reading of the group's options agrees with click's likewise."""

from __future__ import annotations

from typing import Any

import click
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from imcache.cli import run_words
from imcache.cli.fast import group_options
from imcache.cli.main import cli
from imcache.cli.run_cmd import run
from imcache.cli.run_words import split_run_words

SPELLINGS = [
    *run_words.FLAGS,
    *(f"{flag}=x" for flag in run_words.FLAGS),
    "--get",
    "--get=out_file",
    "--get=",
    "--get=a=b",
    "--export",
    "--export=out_file=here.nii",
    "--",
    "-",
    "-x",
    "-=y",
    "--in-files",
    "--in-files=a.nii",
    "--unknown",
    "--getx",
    "--json-",
    "fsl.Merge",
    "a.nii",
    "-1",
    "=",
    "",
]
WORDS = st.lists(st.one_of(st.sampled_from(SPELLINGS), st.text(max_size=6)), max_size=10)


def by_click(args: list[str]) -> dict[str, Any] | None:
    """ctx.params as click's own parser makes them, or None if click refuses the words."""
    ctx = click.Context(run, info_name="run", ignore_unknown_options=True)
    try:
        click.Command.parse_args(run, ctx, list(args))
    except click.UsageError:
        return None
    return dict(ctx.params)


def by_run_words(args: list[str]) -> dict[str, Any] | None:
    """ctx.params as the run command makes them from run_words, or None: it hands over."""
    if split_run_words(args) is None:
        return None
    ctx = click.Context(run, info_name="run", ignore_unknown_options=True)
    run.parse_args(ctx, list(args))
    return dict(ctx.params)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(WORDS)
@example(["fsl.Merge", "--get", "--json", "--in-files", "a", "--", "--force"])
@example(["--get=x", "fsl.Merge", "--get", "y", "--export", "-a", "--export=b=c"])
@example(["fsl.Merge", "--json=1"])
@example(["fsl.Merge", "--get"])
def test_the_run_command_and_run_words_read_the_same_request(words: list[str]) -> None:
    ours = by_run_words(words)
    theirs = by_click(words)
    if ours is None:
        # Handing over is for words click refuses: click then says why, as ever.
        assert theirs is None, f"handed over words click takes: {words!r}"
        return
    assert theirs == ours, f"{words!r}: click {theirs!r}, run_words {ours!r}"
    assert split_run_words(words).params() == ours  # what fast.py reads: the same


def test_run_words_knows_every_option_the_command_declares() -> None:
    options = [param for param in run.params if isinstance(param, click.Option)]
    declared = {opt for option in options for opt in option.opts}
    assert declared == {*run_words.FLAGS, *run_words.VALUE, *run_words.REPEATED}


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("group")
    (root / "a file").write_text("")
    (root / "a folder").mkdir()
    return [str(root / "a file"), str(root / "a folder"), str(root / "nothing")]


def group_by_click(argv: list[str]) -> tuple[dict[str, Any], list[str]] | None:
    try:
        ctx = cli.make_context("imcache", list(argv))
    except (click.UsageError, click.exceptions.Exit):
        return None
    return dict(ctx.params), [*ctx._protected_args, *ctx.args]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_group_options_read_as_click_reads_them(data: st.DataObject, paths: list[str]) -> None:
    values = st.sampled_from([*paths, "auto", "never", "red", "", "-x", "run"])
    options = st.sampled_from(["--base-dir", "--interfaces", "--color", "--version", "-h", "--"])
    word = st.one_of(
        options,
        st.builds(lambda o, v: f"{o}={v}", options, values),
        values,
        st.sampled_from(["run", "ls"]),
    )
    argv = data.draw(st.lists(word, max_size=8))
    ours = group_options(argv)
    if ours is None:
        return  # handing over is always allowed: the click app reads the words itself
    theirs = group_by_click(argv)
    assert theirs is not None, f"{argv!r}: click refuses what fast.py took"
    params, rest = theirs
    given_, our_rest = ours
    assert our_rest == rest
    assert params["base_dir"] == (given_["--base-dir"] or [None])[-1]
    assert params["color"] == (given_["--color"] or [None])[-1]
    assert list(params["catalogues"]) == given_["--interfaces"]


def test_group_options_hand_over_what_is_not_certain(paths: list[str]) -> None:
    assert group_options(["--base-dir", paths[0], "run"]) is None  # a file: click says so
    assert group_options(["--color", "red", "run"]) is None
    assert group_options(["--version"]) is None
    assert group_options(["--base-dir"]) is None
    assert group_options(["--base-dir", paths[1], "run", "x"]) == (
        {"--base-dir": [paths[1]], "--interfaces": [], "--color": []},
        ["run", "x"],
    )
