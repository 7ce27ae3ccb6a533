"""imcache: run command-line tools from Boutiques definitions and reuse identical earlier runs."""

from __future__ import annotations

__version__ = "0.1.0"
