"""The names imcache gives to things on disk, where a str method stands in for a pattern."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from imcache.core.layout import KEY_PATTERN, is_key

KEYISH = st.text(alphabet="0123456789abcdefABCDEFg \n\u0663.", min_size=30, max_size=34)


@given(st.one_of(KEYISH, st.text(max_size=40)))
def test_is_key_is_what_the_key_pattern_says(name: str) -> None:
    assert is_key(name) == (re.fullmatch(KEY_PATTERN.pattern, name) is not None), repr(name)


def test_is_key_on_edges() -> None:
    assert is_key("0123456789abcdef" * 2)
    assert not is_key("0123456789abcdef" * 2 + "\n")
    assert not is_key("0123456789ABCDEF" * 2)
    assert not is_key("0123456789abcdef" * 2 + "0")
    assert not is_key("0123456789abcde\u0663" + "0123456789abcdef")
