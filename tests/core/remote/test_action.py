"""Issue 16 part 1, found in review: a remote record may describe a link; a file described below
that link must not be written through it, outside the cache root."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from imcache.core.errors import ImcacheError
from imcache.core.layout import REMOTE_LAYOUT, cache_root, remote_blob
from imcache.core.remote.action import decode_action, encode_action
from imcache.core.remote.fetch import install_action
from imcache.core.store import Store

KEY = "e" * 32


class Bucket:
    """Only what a fetch asks of a client: a blob's bytes, streamed."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def stream(self, name: str) -> Iterator[bytes]:
        if name not in self.blobs:
            raise FileNotFoundError(name)
        yield self.blobs[name]


def test_a_file_below_a_remote_link_is_not_written_outside_the_root(tmp_path: Path) -> None:
    victim = tmp_path / "outside"
    victim.mkdir()
    payload = b"written by whoever could write the bucket\n"
    sha = hashlib.sha256(payload).hexdigest()
    action = {
        "remote_layout": REMOTE_LAYOUT,
        "key": KEY,
        "interface": "pkg.Tool",
        "record": {"key": KEY, "outputs": {}, "files": {}},
        "files": {
            "d": {"link": str(victim)},
            "d/planted.txt": {"sha256": sha, "size": len(payload), "mode": 0o644},
        },
    }
    store = Store(cache_root(str(tmp_path / "base")))
    bucket = Bucket({remote_blob(sha): payload})
    with pytest.raises(ImcacheError):  # refused, when read or when fetched
        decoded = decode_action(encode_action(action), "pkg.Tool", KEY, "ac/pkg.Tool/x.json")
        install_action(store, "pkg.Tool", KEY, bucket, decoded)  # type: ignore[arg-type]
    assert list(victim.iterdir()) == [], "a file was written outside the cache root"
