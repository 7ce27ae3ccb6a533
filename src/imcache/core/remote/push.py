"""Push a complete local entry: its distinct files to `cas/`, then its action record, create-only.

Blobs go first and the record last, so a record never names a blob that is not there; a push
killed half-way leaves blobs nobody names (the bucket's lifecycle rule expires them) and no record.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from typing import Any

from imcache.core.datatype import datatype
from imcache.core.errors import RemoteError
from imcache.core.layout import REMOTE_LAYOUT, remote_blob, remote_record
from imcache.core.remote.action import digest_local, encode_action
from imcache.core.remote.client import RemoteClient
from imcache.core.store import Store


@datatype
class Pushed:
    interface: str
    key: str
    won: bool  # False: a record was there already (another publisher won, theirs stands)
    uploaded: int  # bytes of the blobs this push sent (those not in the bucket yet)
    files: int


def push_entry(store: Store, entry: str, client: RemoteClient) -> Pushed:
    """Upload the entry's blobs that the bucket lacks, then its record unless one exists."""
    record = store.read_record(entry)
    if record is None or not isinstance(record.get("files"), dict):
        raise RemoteError(f"{entry} is not a complete entry; not pushed", "run it again first")
    interface, key = str(record["interface"]), str(record["key"])
    record_path = remote_record(interface, key)
    if client.size(record_path) is not None:
        return Pushed(interface, key, won=False, uploaded=0, files=len(record["files"]))
    files = describe_files(entry, record["files"])
    uploaded = 0
    sent: set[str] = set()
    # Smallest first: the logs and small outputs are up before a large upload takes its time.
    for relative, info in sorted(files.items(), key=lambda item: item[1].get("size", 0)):
        if "sha256" not in info or info["sha256"] in sent:
            continue
        sent.add(info["sha256"])
        blob = remote_blob(info["sha256"])
        if client.size(blob) != info["size"]:
            client.upload(blob, os.path.join(entry, relative))
            uploaded += info["size"]
    local = {name: value for name, value in record.items() if name != "check"}
    action = {
        "remote_layout": REMOTE_LAYOUT,
        "key": key,
        "interface": interface,
        "tool": record.get("tool"),
        "files": files,
        "record": local,
        "published_by": f"{_user()}@{socket.gethostname()}",
        "published_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    won = client.write(record_path, encode_action(action), create_only=True)
    return Pushed(interface, key, won=won, uploaded=uploaded, files=len(files))


def describe_files(entry: str, recorded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every file the local record lists, with its sha256 and mode; a file that no longer matches
    the local record (damaged since) stops the push: the bucket must not spread it."""
    files: dict[str, dict[str, Any]] = {}
    for relative, known in sorted(recorded.items()):
        if "link" in known:
            files[relative] = {"link": known["link"]}
            continue
        path = os.path.join(entry, relative)
        try:
            digests = digest_local(path)
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError as exc:
            raise _damaged(entry, f"{relative} cannot be read ({exc.strerror})") from exc
        if digests.size != known.get("size") or digests.xxh3.hexdigest() != known.get("xxh3"):
            raise _damaged(entry, f"{relative} changed since it was recorded")
        files[relative] = {
            "size": digests.size,
            "mode": mode & 0o755,
            "sha256": digests.sha256.hexdigest(),
        }
    return files


def _damaged(entry: str, problem: str) -> RemoteError:
    return RemoteError(
        f"{entry} is damaged ({problem}); not pushed",
        "run 'imcache verify --fix', then run it again",
    )


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())
