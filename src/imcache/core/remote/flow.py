"""What a run asks of the remote: fetch on a local miss, push after a run. Never fails a run.

Every remote failure (unreachable, denied, a tampered or missing blob) is one warning through the
run's reporter and one `remote-fail` line in events.log (so `imcache stats` counts it); the run
goes on as if there were no remote. A remote that could not be reached while fetching is not asked
to take the push of the same run (one warning, not two).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from imcache.core.errors import RemoteDataError, RemoteError
from imcache.core.remote.client import RemoteClient
from imcache.core.remote.fetch import Fetched, fetch_entry, install_action, read_action
from imcache.core.remote.settings import RemoteSettings, remote_settings
from imcache.core.store import Store

Warn = Callable[[str], None]
# events.log lines, counted by `imcache stats`
REMOTE_HIT, REMOTE_MISS, REMOTE_PUSH, REMOTE_FAIL = (
    "remote-hit",
    "remote-miss",
    "remote-push",
    "remote-fail",
)
_FAILED: set[str] = set()  # remotes unreachable in this run's fetch: its push is not tried
_BAD: set[tuple[str, str]] = set()  # (remote, key) whose remote entry is damaged: not adopted


def fetch_for_run(
    store: Store, interface: str, key: str, env: Mapping[str, str], warn: Warn
) -> Fetched | None:
    """The remote's entry for this key, now a local entry; None on a remote miss or failure.

    The caller holds the entry's exclusive lock."""
    settings = remote_settings(env)
    if settings is None:
        return None
    _FAILED.discard(settings.url)  # a new run asks again
    client = RemoteClient(settings)  # a missing obstore is the user's to fix: raised
    try:
        fetched = fetch_entry(store, interface, key, client)
    except (RemoteError, OSError) as exc:
        _failed(store, interface, key, settings, warn, exc)
        return None
    store.log_event(REMOTE_MISS if fetched is None else REMOTE_HIT, interface, key)
    return fetched


def push_for_run(
    store: Store,
    interface: str,
    key: str,
    env: Mapping[str, str],
    warn: Warn,
    adopt: bool = True,
) -> Fetched | None:
    """Push the entry just published. When another publisher won the key meanwhile and `adopt`,
    their entry replaces ours locally (returned), so that every caller gets the same bytes."""
    from imcache.core.remote.probe import create_only_honoured
    from imcache.core.remote.push import push_entry

    settings = remote_settings(env)
    if settings is None or settings.read_only or settings.url in _FAILED:
        return None
    client = RemoteClient(settings)
    try:
        if not create_only_honoured(client, store):
            warn(
                f"remote {settings.where} does not honour create-only writes "
                "(If-None-Match); it is used read-only"
            )
            return None
        pushed = push_entry(store, store.entry_dir(interface, key), client)
        if pushed.won:
            store.log_event(REMOTE_PUSH, interface, key)
            return None
        adopt = adopt and (settings.url, key) not in _BAD
        action = read_action(client, interface, key) if adopt else None
        if action is None or _same_files(store, interface, key, action):
            return None
        return install_action(store, interface, key, client, action, replace=True)
    except (RemoteError, OSError) as exc:
        _failed(store, interface, key, settings, warn, exc)
        return None


def _same_files(store: Store, interface: str, key: str, action: dict[str, object]) -> bool:
    """Our entry holds the winner's bytes already (a deterministic tool): nothing to replace."""
    record = store.read_record(store.entry_dir(interface, key))
    theirs = action["record"]
    return record is not None and isinstance(theirs, dict) and record["files"] == theirs["files"]


def _failed(
    store: Store,
    interface: str,
    key: str,
    settings: RemoteSettings,
    warn: Warn,
    exc: Exception,
) -> None:
    if isinstance(exc, RemoteDataError):  # one record's fault, not the remote's: push still
        _BAD.add((settings.url, key))
    else:
        _FAILED.add(settings.url)
    message = exc.message if isinstance(exc, RemoteError) else f"{settings.where}: {exc}"
    warn(f"remote: {message}; going on without it")
    store.log_event(REMOTE_FAIL, interface, key)
