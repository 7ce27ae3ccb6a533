"""The matches a hit makes with str methods instead of `re` find exactly what the regular
expressions they stand for find (hypothesis over texts made of the characters that matter)."""

from __future__ import annotations

import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from imcache.core.interfaces.crosscheck import is_value_key, value_keys_in
from imcache.core.interfaces.registry import split_name
from imcache.core.interfaces.render import split_spaces
from imcache.core.interfaces.templates import key_pattern

VALUE_KEY = re.compile(r"\[[A-Za-z_][A-Za-z0-9_]*\]")
NAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]*)\.([^/\\\0]+)")
TRICKY = st.text(alphabet="[]_aZ09-./\\\0 é\t", max_size=30)
# Every character str.isspace takes, and some it does not.
SPACES = [chr(c) for c in range(0x3100) if chr(c).isspace()] + ["a", "\u200b", "\x1b", "x"]


@settings(max_examples=500)
@given(TRICKY)
@example("[A] [1] [_b2][c")
@example("[[IN]]")
def test_value_keys_are_found_as_the_pattern_finds_them(text: str) -> None:
    assert value_keys_in(text) == VALUE_KEY.findall(text)
    assert is_value_key(text) == (VALUE_KEY.fullmatch(text) is not None)


@settings(max_examples=500)
@given(TRICKY)
@example("fsl.Merge")
@example("a-b_c.x.y")
@example("-a.b")
@example("a.")
@example(".a")
@example("a./b")
@example("é.x")
def test_an_interface_name_splits_as_the_pattern_splits_it(name: str) -> None:
    matched = NAME.fullmatch(name)
    assert split_name(name) == (None if matched is None else matched.groups())


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from(SPACES), max_size=12))
@example("")
@example("  a  b ")
def test_white_space_splits_as_re_split_does(text: str) -> None:
    assert split_spaces(text) == re.split(r"(\s+)", text)


KEYS = st.lists(st.text(alphabet="[]INx_", min_size=0, max_size=5), max_size=5)


def as_re(keys: list[str]) -> re.Pattern[str]:
    ordered = sorted(keys, key=len, reverse=True)
    return re.compile("|".join(re.escape(key) for key in ordered) if ordered else r"(?!)")


@settings(max_examples=500)
@given(KEYS, st.text(alphabet="[]INx_ ", max_size=30))
@example(["[IN]", "[IN_FILE]"], "cp [IN_FILE] [IN] [IN_FILE_2]")
@example(["[A]", "[B]"], "[A][B][[A]]")
@example(["", "[A]"], "x[A]y")
def test_value_keys_are_substituted_as_the_alternation_would(keys: list[str], text: str) -> None:
    ours, theirs = key_pattern(keys), as_re(keys)
    assert ours.findall(text) == theirs.findall(text)
    found = [(m.group(0), m.start(), m.end()) for m in ours.finditer(text)]
    assert found == [(m.group(0), m.start(), m.end()) for m in theirs.finditer(text)]
    assert ours.sub(" ", text) == theirs.sub(" ", text)
    assert ours.sub(lambda m: f"<{m.group(0)}>", text) == theirs.sub(
        lambda m: f"<{m.group(0)}>", text
    )
