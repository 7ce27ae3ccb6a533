"""`imcache remote check`: may this machine read the remote, write to it; is create-only kept?"""

from __future__ import annotations

from collections.abc import Mapping

from imcache.core.datatype import datatype
from imcache.core.errors import RemoteDeniedError, RemoteError, UsageError
from imcache.core.layout import remote_record
from imcache.core.remote.client import RemoteClient
from imcache.core.remote.probe import probe
from imcache.core.remote.settings import RemoteSettings, remote_settings


@datatype
class CheckReport:
    remote: str
    endpoint: str | None
    mode: str  # read-write or read-only, as configured
    readable: bool  # reachable, and the credentials may read
    writable: bool | None  # None: not tried (read-only mode, or unreadable)
    create_only: bool | None  # None: not tried
    problems: list[str]

    @property
    def usable_for_writes(self) -> bool:
        return bool(self.writable and self.create_only)


def configured(env: Mapping[str, str]) -> RemoteSettings:
    settings = remote_settings(env)
    if settings is None:
        raise UsageError(
            "no remote is configured",
            "set IMCACHE_REMOTE=s3://BUCKET[/PREFIX] (or --remote, or 'remote' in imcache.toml)",
        )
    return settings


def check_remote(env: Mapping[str, str]) -> CheckReport:
    settings = configured(env)
    client = RemoteClient(settings)
    problems: list[str] = []
    readable = True
    try:
        client.read(remote_record("imcache.Check", "0" * 32))  # a name no entry has: 404
    except RemoteError as exc:
        readable = False
        problems.append(exc.message)
    writable: bool | None = None
    create_only: bool | None = None
    if readable and not settings.read_only:
        try:
            create_only = probe(client)
            writable = True
        except RemoteDeniedError as exc:
            writable = False
            problems.append(f"{exc.message} (use IMCACHE_REMOTE_MODE=read-only)")
        except RemoteError as exc:
            problems.append(exc.message)
        if create_only is False:
            problems.append("the server ignores If-None-Match: runs use it read-only")
    return CheckReport(
        remote=settings.url,
        endpoint=settings.endpoint,
        mode="read-only" if settings.read_only else "read-write",
        readable=readable,
        writable=writable,
        create_only=create_only,
        problems=problems,
    )
