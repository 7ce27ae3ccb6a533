"""A lazy pattern is the compiled pattern, compiled (and `re` imported) on first use only."""

from __future__ import annotations

import subprocess
import sys

from imcache.core.lazyre import lazy_pattern


def test_a_lazy_pattern_matches_as_the_compiled_one() -> None:
    key = lazy_pattern(r"([0-9a-f]{4})-(x|y)")
    assert key.fullmatch("0a1b-x") is not None
    assert key.fullmatch("0a1b-z") is None
    assert key.sub("", "ab12-y!") == "!"
    assert key.pattern == r"([0-9a-f]{4})-(x|y)"


def test_re_is_imported_only_when_a_pattern_is_used() -> None:
    probe = (
        "import sys\n"
        "from imcache.core.lazyre import lazy_pattern\n"
        "p = lazy_pattern('a+')\n"
        "before = 're' in sys.modules\n"
        "print(before, bool(p.fullmatch('aaa')), 're' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "True"]
