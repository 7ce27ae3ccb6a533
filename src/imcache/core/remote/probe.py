"""Does the remote honour create-only writes (`If-None-Match: *`)? Asked once, then remembered.

The first publisher of a key must win: the record is put create-only, and a 412 tells a later one
that theirs stands. A server that ignores the precondition (nginx WebDAV, rclone's S3 server) would
let every publisher replace the record, so it is used read-only. The probe puts one object twice,
create-only; the answer is kept per process and, for a day, in the cache root.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time

from imcache.core.errors import RemoteError
from imcache.core.files import write_atomic
from imcache.core.layout import REMOTE_PROBES, remote_probe
from imcache.core.remote.client import RemoteClient
from imcache.core.store import Store

PROBE_TTL_S = 24 * 3600  # a server may be upgraded (or replaced): ask again after a day
_KNOWN: dict[str, bool] = {}


def create_only_honoured(client: RemoteClient, store: Store) -> bool:
    """True when a second create-only put of one object is refused, as S3 refuses it."""
    name = f"{client.settings.endpoint or 'aws'} {client.settings.url}"
    if name in _KNOWN:
        return _KNOWN[name]
    remembered = _remembered(store, name)
    if remembered is None:
        remembered = probe(client)
        _remember(store, name, remembered)
    _KNOWN[name] = remembered
    return remembered


def probe(client: RemoteClient) -> bool:
    """Put a fresh object twice, create-only: the second must be refused. Raises RemoteError
    when the remote cannot be written at all (a read-only identity gets 403 here)."""
    tag = remote_probe(f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}")
    first = client.write(tag, b"imcache create-only probe\n", create_only=True)
    second = client.write(tag, b"imcache create-only probe, again\n", create_only=True)
    with contextlib.suppress(RemoteError):
        client.delete(tag)  # a user who may write but not delete leaves one tiny object
    return first and not second


def _remembered(store: Store, name: str) -> bool | None:
    try:
        with open(os.path.join(store.root, REMOTE_PROBES), "rb") as handle:
            found = json.loads(handle.read()).get(name)
        if time.time() - float(found["checked"]) < PROBE_TTL_S:
            return bool(found["create_only"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


def _remember(store: Store, name: str, honoured: bool) -> None:
    path = os.path.join(store.root, REMOTE_PROBES)
    try:
        with open(path, "rb") as handle:
            known = json.loads(handle.read())
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    known[name] = {"create_only": honoured, "checked": time.time()}
    with contextlib.suppress(OSError):
        write_atomic(path, json.dumps(known, indent=1, sort_keys=True).encode())
