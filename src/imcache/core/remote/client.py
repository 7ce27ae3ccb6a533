"""The one module that imports obstore: a few S3 operations, each failure a RemoteError.

obstore (the Rust `object_store` crate's bindings) streams large files both ways (multipart
uploads from a file, chunked downloads) and does create-only puts (`If-None-Match: *`). It is an
optional extra, `imcache[remote]`, imported only once a remote is configured and needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from imcache.core.errors import RemoteDeniedError, RemoteError
from imcache.core.remote.settings import RemoteSettings

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config, S3Store

CHUNK = 8 * 1024 * 1024  # bytes per downloaded chunk and per uploaded part: memory stays small
UPLOAD_CONCURRENCY = 4  # parts in flight at once: at most this many CHUNKs held for an upload
# A remote that is down must cost a run seconds, not obstore's default of minutes of retries.
RETRIES = {"max_retries": 2, "retry_timeout": timedelta(seconds=10)}
CLIENT = {"connect_timeout": "5s", "timeout": "30m", "read_timeout": "60s"}


class RemoteClient:
    """A bucket (and prefix) of one remote, with the few operations the tier needs."""

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self.store = _open_store(settings)

    def read(self, path: str) -> bytes | None:
        """The whole object (a small one: a record), or None when there is none."""
        import obstore

        try:
            return bytes(obstore.get(self.store, path).bytes())
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error("read", path, exc) from exc

    def stream(self, path: str) -> Iterator[bytes]:
        """The object's bytes chunk by chunk; FileNotFoundError when there is none."""
        import obstore

        try:
            result = obstore.get(self.store, path)
            for chunk in result.stream(min_chunk_size=CHUNK):
                yield bytes(chunk)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise self._error("read", path, exc) from exc

    def size(self, path: str) -> int | None:
        """The object's size, or None when there is none."""
        import obstore

        try:
            return int(obstore.head(self.store, path)["size"])
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error("look up", path, exc) from exc

    def write(self, path: str, payload: bytes, *, create_only: bool) -> bool:
        """Put `payload`; False when `create_only` and the object exists already (HTTP 412)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        try:
            obstore.put(self.store, path, payload, mode="create" if create_only else "overwrite")
        except (AlreadyExistsError, PreconditionError):
            return False
        except Exception as exc:
            raise self._error("write", path, exc) from exc
        return True

    def upload(self, path: str, source: str) -> None:
        """Put a local file, streamed in parts (a 1 GiB output is never read into memory)."""
        import obstore

        try:
            obstore.put(
                self.store,
                path,
                Path(source),
                chunk_size=CHUNK,
                max_concurrency=UPLOAD_CONCURRENCY,
            )
        except Exception as exc:
            raise self._error("upload", path, exc) from exc

    def delete(self, path: str) -> None:
        import obstore

        try:
            obstore.delete(self.store, path)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._error("delete", path, exc) from exc

    def _error(self, doing: str, path: str, exc: Exception) -> RemoteError:
        from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

        detail = _short(exc)
        where = f"{self.settings.where}: cannot {doing} {path}"
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            return RemoteDeniedError(
                f"{where}: access denied ({detail})",
                "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or set "
                "IMCACHE_REMOTE_MODE=read-only for credentials that may only read",
            )
        return RemoteError(f"{where} ({detail})", "check AWS_ENDPOINT_URL and the network")


def _open_store(settings: RemoteSettings) -> S3Store:
    try:
        from obstore.store import S3Store
    except ImportError:
        raise RemoteError(
            f"a remote is configured ({settings.url}) but obstore is not installed",
            "pip install 'imcache[remote]' (or unset IMCACHE_REMOTE)",
        ) from None
    config: dict[str, Any] = {
        "endpoint": settings.endpoint,
        "access_key_id": settings.access_key_id,
        "secret_access_key": settings.secret_access_key,
        "session_token": settings.session_token,
        "region": settings.region,
    }
    client: dict[str, Any] = dict(CLIENT)
    if settings.endpoint and settings.endpoint.startswith("http://"):
        client["allow_http"] = True  # a lab's own server (MinIO, SeaweedFS) on its network
    try:
        return S3Store(
            settings.bucket,
            prefix=settings.prefix or None,
            config=cast("S3Config", {k: v for k, v in config.items() if v is not None}),
            client_options=cast("ClientConfig", client),
            retry_config=cast("RetryConfig", RETRIES),
        )
    except Exception as exc:
        raise RemoteError(
            f"cannot use the remote {settings.where}: {_short(exc)}",
            "check IMCACHE_REMOTE and the AWS_* variables",
        ) from exc


def _short(exc: Exception) -> str:
    """obstore's messages run over several lines of the Rust error chain: the first, trimmed."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
