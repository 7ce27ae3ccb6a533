"""Fetch an entry from the remote: every blob into a private folder, checked as it streams.

The folder (`<key>.fetching-<host>-<pid>`, beside the entry, on the same file system) becomes the
entry only once every file arrived at its size and digests; then its local record is written (last
among its files) and the folder is renamed onto the key, as a local run publishes its own. A
missing or wrong blob discards the whole fetch: never a partial entry.
"""

from __future__ import annotations

import os
from typing import Any

from imcache.core.attempts import forget_ours, mark_ours
from imcache.core.datatype import datatype
from imcache.core.errors import RemoteDataError
from imcache.core.files import remove_tree_quietly
from imcache.core.layout import fetching_name, remote_blob, remote_record
from imcache.core.remote.action import Digests, decode_action
from imcache.core.remote.client import RemoteClient
from imcache.core.store import Store


@datatype
class Fetched:
    entry: str
    bytes: int  # of the files fetched
    action: dict[str, Any]


def read_action(client: RemoteClient, interface: str, key: str) -> dict[str, Any] | None:
    """The remote record of this key, checked; None when the remote has none."""
    path = remote_record(interface, key)
    payload = client.read(path)
    if payload is None:
        return None
    return decode_action(payload, interface, key, f"{client.settings.url}/{path}")


def fetch_entry(store: Store, interface: str, key: str, client: RemoteClient) -> Fetched | None:
    """The remote's entry for this key, placed in the local cache; None when it has none.

    The caller holds the entry's exclusive lock. A RemoteError means nothing was placed."""
    action = read_action(client, interface, key)
    if action is None:
        return None
    return install_action(store, interface, key, client, action)


def install_action(
    store: Store,
    interface: str,
    key: str,
    client: RemoteClient,
    action: dict[str, Any],
    replace: bool = False,
) -> Fetched:
    """Fetch the files `action` names and make them the local entry. An intact local entry
    published meanwhile stays (the first local publisher wins), unless `replace`: our own
    result that lost the race to publish remotely gives way to the remote's winner."""
    store.ensure(interface)
    entry = store.entry_dir(interface, key)
    private = fetching_name(entry)
    os.mkdir(private)
    mark_ours(private)  # a thread of ours filling it: never a leftover to sweep
    try:
        total = _fetch_files(client, private, action, f"{interface} {key[:12]}")
        store.publish(private, _stamped(store, private, action["record"]))
        store.place_entry(private, entry, replace=replace)
    except BaseException:
        forget_ours(private)
        remove_tree_quietly(private)
        raise
    return Fetched(entry=entry, bytes=total, action=action)


def _stamped(store: Store, entry: str, record: dict[str, Any]) -> dict[str, Any]:
    """The record with each output's signature of the files as placed here: the publisher's
    inodes and times are not ours, and a hit would reread every output once (a 1 GiB output
    through memory) to learn what the streamed digests just proved."""
    import copy

    from imcache.core.outputs import stamp_signatures

    record = copy.deepcopy(record)
    store.open_to_group(entry)  # first: a chmod would move the signatures
    stamp_signatures(entry, record.get("outputs", {}))
    return record


def _fetch_files(client: RemoteClient, folder: str, action: dict[str, Any], what: str) -> int:
    total = 0
    known = action["record"].get("files", {})
    for relative, info in sorted(action["files"].items()):
        path = os.path.join(folder, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if "link" in info:
            os.symlink(info["link"], path)
            continue
        digests = _fetch_blob(client, info["sha256"], path, what, relative)
        problem = ""
        if digests.size != info["size"]:
            problem = f"has {digests.size} bytes, not {info['size']}"
        elif digests.sha256.hexdigest() != info["sha256"]:
            problem = "does not match its sha256 (tampered with, or damaged)"
        elif known.get(relative, {}).get("xxh3") != digests.xxh3.hexdigest():
            problem = "does not match the entry's own record"
        if problem:
            raise RemoteDataError(
                f"remote entry {what}: {relative} {problem}; the fetch was discarded",
                "remove that record from the bucket; this run goes on without it",
            )
        os.chmod(path, (info["mode"] & 0o755) | 0o600)
        total += digests.size
    return total


def _fetch_blob(client: RemoteClient, sha256: str, path: str, what: str, relative: str) -> Digests:
    digests = Digests()
    try:
        with open(path, "wb") as handle:
            for chunk in client.stream(remote_blob(sha256)):
                digests.update(chunk)
                handle.write(chunk)
    except FileNotFoundError:
        raise RemoteDataError(
            f"remote entry {what}: the blob of {relative} is missing; the fetch was discarded",
            "the bucket's lifecycle rule may have expired it; push the entry again",
        ) from None
    return digests
