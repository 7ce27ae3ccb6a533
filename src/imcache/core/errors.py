"""The one exception family of imcache; the CLI maps each class to an exit code."""

from __future__ import annotations


class ImcacheError(Exception):
    """A problem the user can act on: `message` names the culprit, `hint` says what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Whole across pickling (a worker of a process pool raising it): every attribute kept,
        # whatever the subclass's own arguments.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[ImcacheError], args: tuple[object, ...], state: dict[str, object]) -> object:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class UsageError(ImcacheError):
    """Bad arguments on the command line: nothing was run (exit 2)."""

    exit_code = 2


class DefinitionError(ImcacheError):
    """An interface definition that cannot be used; names the file and the field."""

    def __init__(self, source: str, field: str, problem: str, hint: str = "") -> None:
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}", hint or "fix the definition and try again")
        self.source = source
        self.field = field
        self.problem = problem


class UnknownInterfaceError(UsageError):
    """A `PACKAGE.Name` that no catalogue on the search path holds."""


class NoSessionError(ImcacheError):
    """A bound that needs the latest session start, in a cache where none was ever started."""


class ToolNotFoundError(ImcacheError):
    """The program an interface runs is not on PATH."""


class CacheError(ImcacheError):
    """The cache root cannot be created, written or trusted."""


class ToolFailedError(ImcacheError):
    """The wrapped program failed; imcache exits with the program's own code."""

    def __init__(
        self,
        message: str,
        hint: str,
        tool_exit_code: int,
        kept_dir: str | None = None,
        stderr_tail: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, hint)
        # A signal death shows as a negative returncode; shells report 128+N.
        self.exit_code = tool_exit_code if tool_exit_code > 0 else 128 - tool_exit_code
        self.tool_exit_code = tool_exit_code
        self.kept_dir = kept_dir  # the failed attempt, logs included, set aside for a look
        self.stderr_tail = stderr_tail  # the last lines the tool wrote to stderr


class OutputsMissingError(ImcacheError):
    """The program exited 0 but did not write a declared output: never cached."""


class InputChangedError(ImcacheError):
    """An input changed while it was read or while the tool ran: nothing was cached."""


class TerminatedError(ImcacheError):
    """imcache got SIGTERM (a CI job cancelled, `timeout`) or SIGHUP (its terminal closed): the
    tool was stopped, exit 128+N (143 for SIGTERM)."""

    exit_code = 143
    signum = 15


class OutputStillWrittenError(ImcacheError):
    """An output changed between its digest and the record: a process the tool left behind is
    still writing it. Nothing was cached."""


class OutputLinkError(ImcacheError):
    """An output is a symbolic link out of its entry: what it names is not the cache's to keep."""


class RemoteError(ImcacheError):
    """The remote tier (an S3 bucket) cannot be reached, read or written: a run goes on without
    it (a warning and a counter); `imcache remote check` and `imcache push` report it."""


class RemoteDataError(RemoteError):
    """What the remote holds is wrong (a tampered or missing blob, an edited record): not used."""


class RemoteDeniedError(RemoteError):
    """The remote refused these credentials the operation (HTTP 401/403): read-only, or wrong."""
