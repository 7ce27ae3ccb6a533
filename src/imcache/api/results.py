"""What a call hands back: `Result` (a run or a hit) and `Planned` (`PipeFunc.plan`, nothing run).

Paths are absolute and point into the cache entry. Nothing keeps the entry alive once the call
has returned: a `clear` may remove it while the caller still holds these paths (as with nipype).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from imcache.core.layout import STDERR_LOG, STDOUT_LOG
from imcache.core.plan import Plan
from imcache.core.run import RunResult

OutputValue = str | list[str]  # a list output is a list of paths


class Outputs(Mapping[str, OutputValue]):
    """A run's outputs by name, read-only: `outputs.merged_file` or `outputs["merged_file"]`."""

    __slots__ = ("_paths",)
    _paths: dict[str, OutputValue]

    def __init__(self, paths: Mapping[str, OutputValue]) -> None:
        object.__setattr__(self, "_paths", dict(paths))

    def __getattr__(self, name: str) -> OutputValue:
        try:
            return self._paths[name]
        except KeyError:
            known = ", ".join(sorted(self._paths)) or "none"
            raise AttributeError(f"no output {name!r} (this run produced: {known})") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("outputs are read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("outputs are read-only")

    def __getitem__(self, name: str) -> OutputValue:
        return self._paths[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._paths})

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self._paths.items())
        return f"Outputs({inner})"


class Result:
    """One call of a `PipeFunc`: where its outputs are, and whether it ran or was reused."""

    __slots__ = ("_run", "outputs")

    def __init__(self, run: RunResult) -> None:
        self._run = run
        self.outputs = Outputs(run.outputs)

    @property
    def interface(self) -> str:
        return self._run.plan.interface.name

    @property
    def key(self) -> str:
        return self._run.plan.key

    @property
    def cached(self) -> bool:
        """True when an identical earlier run was reused (nothing ran)."""
        return self._run.cached

    @property
    def work_dir(self) -> str:
        return self._run.plan.entry

    @property
    def argv(self) -> list[str]:
        return list(self._run.plan.argv)

    @property
    def exit_code(self) -> int:
        return self._run.exit_code

    @property
    def seconds(self) -> float | None:
        """How long the tool ran (for a hit: the earlier run that made the entry)."""
        return self._run.seconds

    @property
    def stdout_path(self) -> str:
        return os.path.join(self.work_dir, STDOUT_LOG)

    @property
    def stderr_path(self) -> str:
        return os.path.join(self.work_dir, STDERR_LOG)

    @property
    def extra_files(self) -> list[str]:
        """Files the tool wrote that no declared output names."""
        return list(self._run.extra_files)

    def export(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        symlink: bool = False,
        overwrite: bool = False,
    ) -> str:
        """Place output `name` at `path`, as the CLI's `--export name=path` does (a hard link,
        else a copy; `symlink` links into the entry); a different existing file is left alone
        unless `overwrite`. Returns how it was placed ("hard link", "copy", ...)."""
        from imcache.core.export import export_outputs

        placed = export_outputs(
            self._run.outputs,
            [(name, os.fspath(path))],
            os.getcwd(),
            "symlink" if symlink else "link",
            overwrite,
        )
        return ", ".join(sorted({item.how for item in placed}))

    def __repr__(self) -> str:
        state = "cached" if self.cached else "ran"
        return f"Result({self.interface}, key={self.key[:12]}, {state}, work_dir={self.work_dir!r})"


class Planned:
    """What a call would do (`PipeFunc.plan`): its key, its command line, hit or miss."""

    __slots__ = ("_plan", "cached")

    def __init__(self, plan: Plan, cached: bool) -> None:
        self._plan = plan
        self.cached = cached  # True: a call would reuse an entry; False: it would run the tool

    @property
    def key(self) -> str:
        return self._plan.key

    @property
    def argv(self) -> list[str]:
        return list(self._plan.argv)

    @property
    def work_dir(self) -> str:
        return self._plan.entry

    @property
    def tool(self) -> str | None:
        """The program a run would start (None: not on PATH, a run would fail)."""
        return self._plan.tool.path

    @property
    def key_fields(self) -> list[str]:
        """What the key was computed from, one line each (as `--dry-run` shows)."""
        return list(self._plan.key_lines)

    @property
    def outputs(self) -> Outputs:
        """Where a run would put its outputs."""
        entry = self._plan.entry
        return Outputs({o.spec.label: os.path.join(entry, o.path) for o in self._plan.outputs})

    def __repr__(self) -> str:
        state = "hit" if self.cached else "miss"
        return f"Planned({self._plan.interface.name}, key={self.key[:12]}, {state})"
