"""The exception family (core/errors.py): what a caller catches, whole across processes."""

from __future__ import annotations

import pickle

from imcache.core.errors import DefinitionError, ImcacheError, ToolFailedError, UsageError


def test_errors_survive_pickling_with_every_attribute() -> None:
    """A process pool's worker raising one hands the caller the same exception."""
    failed = ToolFailedError("mrcat failed", "logs in /x", 7, "/x", ("last", "lines"))
    back = pickle.loads(pickle.dumps(failed))
    assert type(back) is ToolFailedError and str(back) == str(failed)
    assert (back.tool_exit_code, back.exit_code, back.kept_dir) == (7, 7, "/x")
    assert back.stderr_tail == ("last", "lines") and back.hint == "logs in /x"
    definition = pickle.loads(pickle.dumps(DefinitionError("a.json", "inputs", "bad")))
    assert (definition.source, definition.field, definition.problem) == ("a.json", "inputs", "bad")
    usage = pickle.loads(pickle.dumps(UsageError("no input x", "see help()")))
    assert isinstance(usage, ImcacheError) and usage.exit_code == 2 and usage.hint == "see help()"
