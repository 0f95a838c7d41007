"""The one S3 configuration: every S3 read and write of the pipeline goes through an
:class:`S3Connection`, whichever library does the I/O.

Two stacks talk to S3 here: boto3 (the object stores holding clips, tables, checkpoints and
artifacts) and fsspec/s3fs behind :class:`upath.UPath` (corpus roots, the landing zone, clip
reads by URI, the IO managers' base paths).  Both are built from the same three settings
(``storage.s3_endpoint_url``, ``storage.s3_region``, ``storage.s3_retries``) so that a MinIO or
moto endpoint, a region and the retry budget apply to every request, not only to some.

Credentials are never part of it: boto3 and aiobotocore resolve them from the environment
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance or pod role), so
they cannot end up in a config file, a ``repr`` or a log line.

Errors: the object stores classify botocore errors themselves; s3fs turns them into plain
``OSError`` subclasses (keeping the botocore error as ``__cause__``), which
:func:`storage_error_of` maps back to a :class:`StorageError` with the same *transient* rule, so
a step can retry an outage on a corpus root exactly as it does on the object store.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from upath import UPath

from kws_assets.core.storage.object_store import (
    S3_SCHEME,
    ObjectStore,
    StorageError,
    classify_s3_error,
    open_object_store,
)
from kws_assets.settings import StorageSettings

# botocore's retry mode: 5xx, throttling and dropped connections, exponential backoff + jitter.
RETRY_MODE = "standard"
DEFAULT_RETRIES = 4  # the default of storage.s3_retries


@dataclass(frozen=True)
class S3Connection:
    """Endpoint, region and retry budget of every S3 request (empty strings: AWS defaults,
    resolved by boto3 from the environment).  ``retries`` counts retries after the first
    attempt (botocore's ``retries={"max_attempts": n}``)."""

    endpoint_url: str = ""
    region: str = ""
    retries: int = DEFAULT_RETRIES

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"S3 retries must be >= 0, got {self.retries}")
        if self.endpoint_url and "://" not in self.endpoint_url:
            raise ValueError(
                f"S3 endpoint {self.endpoint_url!r} needs a scheme (http:// or https://)"
            )

    @classmethod
    def from_settings(cls, storage: StorageSettings) -> S3Connection:
        """The connection ``storage.s3_endpoint_url`` / ``s3_region`` / ``s3_retries`` describe."""
        return cls(storage.s3_endpoint_url, storage.s3_region, storage.s3_retries)

    # boto3 ------------------------------------------------------------------------------------

    def retry_config(self) -> dict[str, Any]:
        """botocore's ``retries`` option for this connection."""
        return {"max_attempts": self.retries, "mode": RETRY_MODE}

    def boto3_client(self) -> Any:
        """A boto3 S3 client for this endpoint and region, with this retry budget."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url or None,
            region_name=self.region or None,
            config=Config(retries=self.retry_config()),
        )

    def object_store(self, root: str | os.PathLike[str]) -> ObjectStore:
        """The object store for a local folder or an ``s3://bucket/prefix`` root."""
        text = os.fspath(root)
        return open_object_store(text, self.boto3_client() if text.startswith(S3_SCHEME) else None)

    # fsspec / universal-pathlib ---------------------------------------------------------------

    def fsspec_options(self) -> dict[str, Any]:
        """``s3fs.S3FileSystem`` options for this connection (no credentials: from the env)."""
        options: dict[str, Any] = {"config_kwargs": {"retries": self.retry_config()}}
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        return options

    def upath(self, uri: str | os.PathLike[str]) -> UPath:
        """``uri`` as a UPath: ``s3://`` ones bound to this connection, others as they are
        (local paths unchanged; paths joined onto the result keep the connection)."""
        text = os.fspath(uri)
        if is_s3_uri(text):
            return UPath(text, **self.fsspec_options())
        return UPath(text)


def is_s3_uri(uri: str) -> bool:
    return uri.startswith((S3_SCHEME, "s3a://"))


def storage_error_of(uri: str, exc: BaseException) -> StorageError | None:
    """The :class:`StorageError` an S3 failure raised through s3fs (or boto3) means, or None
    when ``exc`` is not an S3 error (a local OSError, a bug, a bad file).

    s3fs re-raises botocore errors as ``OSError``/``PermissionError``/``TimeoutError`` with the
    botocore error as ``__cause__``; the chain is walked to find it.  Connection errors that
    s3fs passes through as aiohttp / asyncio errors count as transient too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageError):
            return current
        found = classify_s3_error(uri, current)
        if found is not None:
            return found
        if _is_connection_error(current):
            return StorageError(
                uri, "connection_error", f"{type(current).__name__}: {current}", transient=True
            )
        current = current.__cause__ or current.__context__
    return None


def transient_storage_error(uri: str, exc: BaseException) -> StorageError | None:
    """:func:`storage_error_of` when it is transient (worth a step retry), else None."""
    error = storage_error_of(uri, exc)
    return error if error is not None and error.transient else None


def _is_connection_error(exc: BaseException) -> bool:
    """aiohttp's connection/payload errors (dropped connections, server disconnects) and
    fsspec's timeout, which s3fs raises as they are once its own retries are spent."""
    from fsspec.exceptions import FSTimeoutError

    try:
        from aiohttp import ClientConnectionError, ClientPayloadError
    except ImportError:  # pragma: no cover - aiohttp comes with s3fs
        return isinstance(exc, FSTimeoutError)
    return isinstance(exc, (FSTimeoutError, ClientConnectionError, ClientPayloadError))
