"""What is retried and what fails at once.

Only transient storage errors (HTTP 5xx, throttling, dropped connections) are retried, in two
layers:

1. the S3 client itself — botocore's ``standard`` retry mode, ``storage.s3_retries`` retries of
   each request with exponential backoff and jitter;
2. the step — an error still transient after the client's attempts (a longer outage) is raised
   as ``dg.RetryRequested`` by the storage layer (:class:`FailFastObjectStore`, used by the IO
   managers and the clip store), so Dagster re-runs the step after an exponential backoff, at
   most :data:`STEP_MAX_RETRIES` times.

Nothing else is retried: there is no blanket ``RetryPolicy``, so a deterministic failure (a
missing keyword partition, a split without rows, a failing check, a bug) fails once, with its
reason.  Permanent storage errors (access denied, no such bucket, no credentials) are raised as
``dg.Failure(allow_retries=False)`` whose description names the object and the reason.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from kws_assets.core.storage.object_store import ObjectNotFound, ObjectStore, StorageError

STEP_MAX_RETRIES = 3
STEP_RETRY_DELAY_S = 1.0  # waits delay * 2**n for the n-th retry: about 1, 2 and 4 s
STEP_RETRY_JITTER = 0.25  # +/- this fraction of the wait, so parallel steps do not retry in step


def _retry_number() -> int:
    """How many times the current step has been retried (0 outside a step)."""
    try:
        return dg.OpExecutionContext.get().retry_number
    except Exception:
        return 0


def transient_retry(error: StorageError) -> dg.RetryRequested:
    """The step retry for a storage error that outlasted the client's own retries."""
    wait = STEP_RETRY_DELAY_S * 2 ** _retry_number()
    wait *= 1 + random.uniform(-STEP_RETRY_JITTER, STEP_RETRY_JITTER)
    return dg.RetryRequested(max_retries=STEP_MAX_RETRIES, seconds_to_wait=round(wait, 3))


def permanent_failure(error: StorageError) -> dg.Failure:
    """The step failure for a permanent storage error: names the object and the reason."""
    return dg.Failure(
        description=f"storage error, not retried: {error}",
        metadata={
            "uri": dg.MetadataValue.text(error.uri),
            "reason": dg.MetadataValue.text(error.reason),
            "detail": dg.MetadataValue.text(error.detail),
        },
        allow_retries=False,
    )


@contextmanager
def fail_fast_on_permanent_errors() -> Iterator[None]:
    """Re-raise a permanent :class:`StorageError` as a non-retried ``dg.Failure`` and a
    transient one as ``dg.RetryRequested`` (with backoff).

    Missing objects pass through unchanged, for callers that treat a missing object as data (a
    quarantined clip, a missing partition).
    """
    try:
        yield
    except ObjectNotFound:
        raise
    except StorageError as error:
        if error.transient:
            raise transient_retry(error) from error
        raise permanent_failure(error) from error


class FailFastObjectStore(ObjectStore):
    """An object store whose permanent errors stop the step at once and whose transient errors
    ask Dagster to re-run it (see the module docstring)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"FailFast({self.inner!r})"

    @property
    def root_uri(self) -> str:
        return self.inner.root_uri

    def uri_for(self, key: str) -> str:
        return self.inner.uri_for(key)

    def key_for_uri(self, uri: str) -> str:
        return self.inner.key_for_uri(uri)

    def put_bytes(self, key: str, data: bytes) -> str:
        with fail_fast_on_permanent_errors():
            return self.inner.put_bytes(key, data)

    def get_bytes(self, key: str) -> bytes:
        with fail_fast_on_permanent_errors():
            return self.inner.get_bytes(key)

    def exists(self, key: str) -> bool:
        with fail_fast_on_permanent_errors():
            return self.inner.exists(key)

    def delete(self, key: str) -> None:
        with fail_fast_on_permanent_errors():
            self.inner.delete(key)

    def list_keys(self, prefix: str = "") -> list[str]:
        with fail_fast_on_permanent_errors():
            return self.inner.list_keys(prefix)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)
