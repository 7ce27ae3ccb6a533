"""`PipeFunc`: an interface as a Python function, its results cached in an imcache cache.

A call builds the same `RunRequest` the CLI builds (keyword values instead of words) and lets go
of every lock when it returns (`hold=False`): a notebook never pins entries against `clear`.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import BinaryIO, cast

from imcache.api.describe import FORCE, docstring, has_input, signature
from imcache.api.results import Planned, Result
from imcache.core.interfaces.model import Interface
from imcache.core.plan import Plan, RunRequest, plan_run
from imcache.core.run import look_up, run

LOG = logging.getLogger("imcache")
Callback = Callable[[str, str], object]  # callback(dir_name, job_name), as nipype calls it


def interface_name(interface: str | type) -> str:
    """`fsl.Merge`, from a name or from a nipype interface class (nipype.interfaces.fsl.Merge):
    the class resolves to the same interface as its name (the core's rule, one for both)."""
    if isinstance(interface, str):
        return interface
    module = getattr(interface, "__module__", "") or ""
    if isinstance(interface, type) and module.startswith("nipype.interfaces."):
        from imcache.core.interfaces.nipype_source import resolve_nipype_class

        return resolve_nipype_class(interface)
    from imcache.core.errors import UsageError

    raise UsageError(
        f"{interface!r} is neither an interface name nor a nipype interface class",
        "give a name such as 'fsl.Merge' ('imcache interfaces' lists them) or a class from "
        "nipype.interfaces",
    )


class _LogReporter:
    """What the core says during a call, as log records of the `imcache` logger."""

    echo: BinaryIO | None = None  # the tool's output goes to the entry's logs only

    def waiting(self, plan: Plan) -> None:
        LOG.info("%s: another process is running key %s; waiting", plan.interface.name, plan.key)

    def running(self, plan: Plan) -> None:
        LOG.info("%s: running %s in %s", plan.interface.name, plan.tool.name, plan.entry)

    def warning(self, message: str) -> None:
        LOG.warning("%s", message)


class PipeFunc:
    """An interface called as a function: `PipeFunc("mrtrix3.MRCat", base_dir=".")`.

    Inputs are keyword arguments named as the interface's inputs (see `help()` of one); a call
    returns a `Result`, reusing an identical earlier run (from Python or the CLI) when there is
    one. `callback(dir_name, job_name)` is called after each call: the interface's folder in the
    cache and the run's key (the entry is their join)."""

    def __init__(
        self,
        interface: str | type,
        base_dir: str | os.PathLike[str],
        callback: Callback | None = None,
        *,
        interfaces: Sequence[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        from imcache.core.interfaces.registry import DefinitionMemo, search_path

        self.name = interface_name(interface)
        self.base_dir = os.path.abspath(os.fspath(base_dir))
        self.callback = callback
        self._catalogues = tuple(os.path.abspath(os.fspath(f)) for f in interfaces)
        self._env = dict(os.environ if env is None else env)
        self._definitions = DefinitionMemo(self.name, search_path(self._catalogues, self._env))
        described = self._definitions.current()
        self._force_is_input = has_input(described, FORCE)
        self.__signature__: inspect.Signature = signature(described)
        self.__class__ = _described(type(self), self.name, docstring(described))
        self._reporter = _LogReporter()

    def __call__(self, **inputs: object) -> Result:
        force = bool(inputs.pop(FORCE, False)) if not self._force_is_input else False
        result = run(self._request(inputs, force), self._reporter)
        if self.callback is not None:
            plan = result.plan
            self.callback(os.path.dirname(plan.entry), plan.key)
        return Result(result)

    def plan(self, **inputs: object) -> Planned:
        """Key, command line and hit or miss, without running anything (the CLI's --dry-run)."""
        planned = plan_run(self._request(inputs, False))
        return Planned(planned, look_up(planned) is not None)

    @property
    def interface(self) -> Interface:
        """The interface's definition as of now (an edited definition is read again)."""
        return self._definitions.current()

    def _request(self, inputs: Mapping[str, object], force: bool) -> RunRequest:
        return RunRequest(
            interface=self.name,
            words=[],
            values=inputs,
            base_dir=self.base_dir,
            cwd=os.getcwd(),
            env=self._env,
            catalogues=self._catalogues,
            force=force,
            hold=False,
            definition=self._definitions.current(),
        )

    def __repr__(self) -> str:
        return f"PipeFunc({self.name}, base_dir={self.base_dir!r})"


def _described(cls: type[PipeFunc], name: str, doc: str) -> type[PipeFunc]:
    """A subclass whose docstring is the interface's: `help()` of an instance documents its
    class, so that is where the interface's description and inputs must be."""
    made = type(cls.__name__, (cls,), {"__doc__": doc, "__qualname__": f"PipeFunc[{name}]"})
    return cast("type[PipeFunc]", made)
