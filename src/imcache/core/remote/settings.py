"""Which remote, how it may be used, and with which endpoint and credentials.

`IMCACHE_REMOTE=s3://BUCKET[/PREFIX]` (also `imcache --remote URL` and the config key `remote`,
which reach the core as this variable), `IMCACHE_REMOTE_MODE=read-write|read-only`, and the
standard AWS variables (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_SESSION_TOKEN`, `AWS_REGION`), so that AWS S3, MinIO, Ceph RGW, SeaweedFS and Garage work.
"""

from __future__ import annotations

from collections.abc import Mapping

from imcache.core.datatype import datatype
from imcache.core.errors import UsageError

REMOTE_VARIABLE = "IMCACHE_REMOTE"
MODE_VARIABLE = "IMCACHE_REMOTE_MODE"
MODES = ("read-write", "read-only")
SCHEME = "s3://"


@datatype
class RemoteSettings:
    url: str  # as given: s3://BUCKET[/PREFIX]
    bucket: str
    prefix: str  # "" or "a/b", no slash at either end
    read_only: bool
    endpoint: str | None  # None: AWS's own endpoint for the region
    access_key_id: str | None
    secret_access_key: str | None
    session_token: str | None
    region: str | None

    @property
    def where(self) -> str:
        """The remote in a message: its URL, and the endpoint when it is not AWS's."""
        return f"{self.url} at {self.endpoint}" if self.endpoint else self.url


def remote_settings(env: Mapping[str, str]) -> RemoteSettings | None:
    """The configured remote, or None when IMCACHE_REMOTE is unset or empty."""
    url = env.get(REMOTE_VARIABLE, "").strip()
    if not url:
        return None
    bucket, prefix = parse_url(url)
    mode = env.get(MODE_VARIABLE, "").strip() or "read-write"
    if mode not in MODES:
        raise UsageError(
            f"{MODE_VARIABLE}={mode!r} is not one of {', '.join(MODES)}",
            "untrusted jobs (pull requests) should use read-only",
        )
    return RemoteSettings(
        url=url,
        bucket=bucket,
        prefix=prefix,
        read_only=mode == "read-only",
        endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
        access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        session_token=env.get("AWS_SESSION_TOKEN") or None,
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
    )


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of `s3://BUCKET[/PREFIX]`; anything else is a usage error."""
    if not url.startswith(SCHEME):
        raise UsageError(
            f"remote {url!r} is not an s3:// URL", "give s3://BUCKET or s3://BUCKET/PREFIX"
        )
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    if not bucket or any(c in bucket for c in " ?#\\"):
        raise UsageError(f"remote {url!r} names no bucket", "give s3://BUCKET[/PREFIX]")
    parts = [part for part in prefix.split("/") if part]
    if any(part in (".", "..") for part in parts):
        raise UsageError(f"remote {url!r}: its prefix may not hold . or ..", "name a plain prefix")
    return bucket, "/".join(parts)
