"""The one "did you mean" of imcache: the known names closest to a misspelt one.

Only a mistake needs it, so callers import it where they report the mistake, and difflib is
imported only when a suggestion is wanted: the run path loads neither.
"""

from __future__ import annotations

from collections.abc import Iterable


def did_you_mean(
    word: str, candidates: Iterable[str], n: int = 1, *, any_case: bool = False
) -> list[str]:
    """Up to `n` candidates close to `word`, closest first; none when nothing is close.

    With `any_case`, a candidate that differs from `word` only in case comes first, even where
    difflib finds it too far (`FSL.merge` -> `fsl.Merge`), and may make the list `n + 1` long.
    """
    import difflib

    ordered = sorted(candidates)
    close = difflib.get_close_matches(word, ordered, n=n)
    if any_case:
        same = {candidate.lower(): candidate for candidate in ordered}.get(word.lower())
        if same is not None and same not in close:
            close.insert(0, same)
    return close
