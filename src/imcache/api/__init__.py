"""imcache's Python face: `Memory`, `PipeFunc` and what a call returns (see docs/python.md)."""

from __future__ import annotations

from imcache.api.memory import Memory
from imcache.api.pipefunc import PipeFunc
from imcache.api.results import Outputs, Planned, Result

__all__ = ["Memory", "Outputs", "PipeFunc", "Planned", "Result"]
