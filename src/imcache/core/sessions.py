"""Sessions: the start of one pipeline run, remembered so that what it did not use can go.

`session.json` holds the latest start; `sessions.log` keeps every one. An entry not used since
the latest start is what a pipeline's last run did not touch (nipype's `clear_previous_runs`).
"""

from __future__ import annotations

import json
import os
import time

from imcache.core.datatype import datatype
from imcache.core.errors import NoSessionError
from imcache.core.files import write_atomic
from imcache.core.layout import SESSION, SESSIONS_LOG
from imcache.core.moments import format_time
from imcache.core.store import Store, cache_errors


@datatype
class Session:
    id: str
    started_ns: int

    @property
    def started(self) -> str:
        return format_time(self.started_ns)


def start_session(store: Store, now_ns: int | None = None) -> Session:
    store.ensure()
    # os.urandom, as secrets.token_hex draws it (secrets imports hmac: 15 ms of every clear)
    session = Session(os.urandom(4).hex(), time.time_ns() if now_ns is None else now_ns)
    payload = {"id": session.id, "started_ns": session.started_ns, "started": session.started}
    with cache_errors(store.root):
        write_atomic(os.path.join(store.root, SESSION), json.dumps(payload).encode())
        with open(os.path.join(store.root, SESSIONS_LOG), "a", encoding="utf-8") as log:
            log.write(json.dumps(payload) + "\n")
    return session


def latest_start(store: Store) -> int:
    """When the latest session started: entries not used since then are the previous run's."""
    session = current_session(store)
    if session is None:
        raise NoSessionError(
            "no session was ever started in this cache",
            "run 'imcache session start' at the start of each pipeline run",
        )
    return session.started_ns


def current_session(store: Store) -> Session | None:
    try:
        with open(os.path.join(store.root, SESSION), "rb") as handle:
            data = json.loads(handle.read())
        return Session(str(data["id"]), int(data["started_ns"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
