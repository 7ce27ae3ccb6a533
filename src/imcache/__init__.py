"""imcache: run command-line tools from Boutiques definitions and reuse identical earlier runs.

From Python: `from imcache import Memory` (docs/python.md). The Python face and the exception
types are imported when first named (module `__getattr__`), so the CLI, which imports this
package on every start, pays nothing for them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: a hit never needs it

__version__ = "0.1.0"

_PUBLIC = {
    "Memory": "imcache.api.memory",
    "PipeFunc": "imcache.api.pipefunc",
    "Result": "imcache.api.results",
    "Outputs": "imcache.api.results",
    "Planned": "imcache.api.results",
    "ImcacheError": "imcache.core.errors",
    "UsageError": "imcache.core.errors",
    "UnknownInterfaceError": "imcache.core.errors",
    "DefinitionError": "imcache.core.errors",
    "ToolNotFoundError": "imcache.core.errors",
    "ToolFailedError": "imcache.core.errors",
    "OutputsMissingError": "imcache.core.errors",
    "InputChangedError": "imcache.core.errors",
    "CacheError": "imcache.core.errors",
}
__all__ = [  # spelt out for linters; the same names as _PUBLIC (a test checks)
    "CacheError",
    "DefinitionError",
    "ImcacheError",
    "InputChangedError",
    "Memory",
    "Outputs",
    "OutputsMissingError",
    "PipeFunc",
    "Planned",
    "Result",
    "ToolFailedError",
    "ToolNotFoundError",
    "UnknownInterfaceError",
    "UsageError",
    "__version__",
]

if TYPE_CHECKING:
    from typing import Any

    from imcache.api.memory import Memory
    from imcache.api.pipefunc import PipeFunc
    from imcache.api.results import Outputs, Planned, Result
    from imcache.core.errors import (
        CacheError,
        DefinitionError,
        ImcacheError,
        InputChangedError,
        OutputsMissingError,
        ToolFailedError,
        ToolNotFoundError,
        UnknownInterfaceError,
        UsageError,
    )


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'imcache' has no attribute {name!r}")
    import importlib  # only when a public name is first used

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
