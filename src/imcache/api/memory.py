"""`Memory`: a cache (the CLI's, at `<base_dir>/imcache_mem`) and a session started with it.

nipype's `Memory`, working: `clear_previous_runs()` removes what was not used since this object
was made (nipype's has removed nothing since 2016), `clear_runs_since()` what was not used since a
date, `clear()` applies the CLI's other policies. Each returns what it removed.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Mapping, Sequence

from imcache.api.pipefunc import Callback, PipeFunc
from imcache.core.clear import ClearReport, Policy, clear
from imcache.core.layout import cache_root
from imcache.core.scan import Entry
from imcache.core.sessions import Session, start_session
from imcache.core.store import Store

LOG = logging.getLogger("imcache")


class Memory:
    """The cache under `base_dir` (None: as the CLI decides, `IMCACHE_BASE_DIR`, imcache.toml,
    else the current folder), with a session started now.

    `interfaces` are folders of definitions searched first (the CLI's --interfaces); `env` is
    the environment runs see and keys read (default: this process's)."""

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        interfaces: Sequence[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        from imcache.core.config import load_config

        environ = dict(os.environ if env is None else env)
        given = None if base_dir is None else os.fspath(base_dir)
        config = load_config({"base_dir": given}, environ, os.getcwd())
        self.base_dir = os.path.abspath(config.base_dir.value)
        self.env = config.core_env(environ)
        self.interfaces = tuple(os.path.abspath(os.fspath(f)) for f in interfaces)
        self.store = Store(cache_root(self.base_dir))
        self.session: Session = start_session(self.store)

    @property
    def root(self) -> str:
        """The cache itself: `<base_dir>/imcache_mem`."""
        return self.store.root

    def cache(self, interface: str | type, callback: Callback | None = None) -> PipeFunc:
        """`interface` (a name such as "fsl.Merge", or a nipype interface class) as a function."""
        return PipeFunc(
            interface, self.base_dir, callback, interfaces=self.interfaces, env=self.env
        )

    def clear_previous_runs(self, warn: bool = True) -> list[Entry]:
        """Remove the entries not used since this Memory was made (its session started)."""
        return self._clear(Policy(before_ns=self.session.started_ns), False, warn)

    def clear_runs_since(
        self,
        day: int | None = None,
        month: int | None = None,
        year: int | None = None,
        warn: bool = True,
    ) -> list[Entry]:
        """Remove the entries not used since the start of the given day (local time, as
        nipype); a part not given is today's."""
        today = dt.date.today()
        since = dt.date(year or today.year, month or today.month, day or today.day)
        midnight = time.mktime((since.year, since.month, since.day, 0, 0, 0, 0, 0, -1))
        return self._clear(Policy(before_ns=int(midnight * 10**9)), False, warn)

    def clear(
        self,
        *,
        older_than: float | dt.timedelta | None = None,
        max_size: int | None = None,
        everything: bool = False,
        dry_run: bool = False,
        warn: bool = True,
    ) -> list[Entry]:
        """The CLI's other policies: entries not used for `older_than` (seconds or a timedelta),
        then the least recently used until the cache holds at most `max_size` bytes; or
        `everything`. `dry_run` removes nothing and returns what would go."""
        if older_than is None and max_size is None and not everything:
            from imcache.core.errors import UsageError

            raise UsageError(
                "clear needs a policy", "give older_than=, max_size= or everything=True"
            )
        before = None
        if older_than is not None:
            age = older_than.total_seconds() if isinstance(older_than, dt.timedelta) else older_than
            before = time.time_ns() - int(age * 10**9)
        return self._clear(Policy(before, max_size, everything), dry_run, warn)

    def _clear(self, policy: Policy, dry_run: bool, warn: bool) -> list[Entry]:
        report = clear(self.store, policy, dry_run)
        if warn:
            _echo(report)
        return list(report.removed)

    def __repr__(self) -> str:
        return f"Memory(base_dir={self.base_dir!r})"


def _echo(report: ClearReport) -> None:
    verb = "would remove" if report.dry_run else "removing"
    for entry in report.removed:
        LOG.warning("%s %s", verb, entry.path)
    for entry in report.in_use:
        LOG.warning("kept %s: in use by another process", entry.path)
