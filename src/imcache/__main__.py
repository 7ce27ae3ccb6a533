from __future__ import annotations

from imcache.cli.main import main

main()
