"""`python -m bench [NAME ...]`: run the benchmarks (all by default), then print one table.

To add a benchmark, write a module with `add_arguments(parser)` and `run(args) -> list[Figure]`
and list it in BENCHMARKS. The exit status is 1 when a figure misses its target.
"""

from __future__ import annotations

import argparse
import compileall
import os
import sys
from types import ModuleType

from bench import REPO, Figure, lifecycle, machine, print_table, remote, speed

BENCHMARKS: dict[str, ModuleType] = {"speed": speed, "lifecycle": lifecycle, "remote": remote}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(BENCHMARKS)}")
    for name, module in BENCHMARKS.items():
        module.add_arguments(parser.add_argument_group(name))
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - BENCHMARKS.keys())
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; there are: {', '.join(BENCHMARKS)}")
    _bytecode_as_installed()
    print(machine(), flush=True)
    figures: list[Figure] = []
    for name in args.names or list(BENCHMARKS):
        print(f"--- {name}", flush=True)
        figures += BENCHMARKS[name].run(args)
    print()
    print_table(figures)
    return 1 if any(figure.met is False for figure in figures) else 0


def _bytecode_as_installed() -> None:
    """Time imcache as an install runs it: from compiled bytecode, as pip leaves it.

    Some sandboxes set PYTHONDONTWRITEBYTECODE, which makes every start-up compile imcache's
    sources again (about 20 ms) while the peers' packages have their bytecode from pip."""
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        print("note: PYTHONDONTWRITEBYTECODE unset for the timed processes")
    compileall.compile_dir(str(REPO / "src"), quiet=1)


if __name__ == "__main__":
    sys.exit(main())
