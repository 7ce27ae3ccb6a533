"""The group loads each command's module only when that command runs."""

from __future__ import annotations

import subprocess
import sys


def test_a_run_does_not_import_the_other_commands() -> None:
    probe = (
        "import sys\n"
        "from imcache.cli.main import cli\n"
        "cli.get_command(None, 'run')\n"
        "heavy = [m for m in ('imcache.core.scan', 'imcache.core.clear', 'imcache.core.sessions',"
        " 'imcache.core.stats', 'imcache.cli.options', 'imcache.cli.params',"
        " 'imcache.cli.clear_cmd', 'imcache.cli.session_cmd', 'imcache.cli.stats_cmd',"
        " 'imcache.cli.interfaces_cmd', 'concurrent.futures', 'imcache.core.process',"
        " 'subprocess', 'traceback', 'shutil', 'difflib', 'dataclasses')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "", f"imported on the run path: {found.stdout.strip()}"
