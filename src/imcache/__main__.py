from __future__ import annotations

from imcache.cli.fast import main

main()
