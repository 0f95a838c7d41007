"""What is retried and what fails at once.

Two layers retry transient storage errors (HTTP 5xx, throttling, dropped connections):

1. the S3 client itself — botocore's ``standard`` retry mode, ``storage.s3_retries`` retries of
   each request with exponential backoff and jitter;
2. the step — :data:`STORAGE_RETRY_POLICY` on every asset and asset check re-runs a step whose
   storage errors outlasted the client's attempts (a longer outage), again with exponential
   backoff.  Dagster's policy cannot tell exception types apart, so a step failing for another
   reason is retried too (a few seconds lost); failures known to be deterministic — a missing
   keyword partition, a split without rows, a permanent storage error — are raised as
   ``dg.Failure(allow_retries=False)`` and skip the policy.

Permanent errors (access denied, no such bucket, no credentials) are not worth a retry: the
storage layer raises them as ``dg.Failure(allow_retries=False)`` whose description names the
object and the reason, so the step fails at once instead of waiting through the policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from kws_assets.core.storage.object_store import ObjectNotFound, ObjectStore, StorageError

STEP_MAX_RETRIES = 3
STEP_RETRY_DELAY_S = 1.0  # waits (2**n - 1) * delay: about 1, 3 and 7 s, each +/- 1 s of jitter

STORAGE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=STEP_MAX_RETRIES,
    delay=STEP_RETRY_DELAY_S,
    backoff=dg.Backoff.EXPONENTIAL,
    jitter=dg.Jitter.PLUS_MINUS,
)


def permanent_failure(error: StorageError) -> dg.Failure:
    """The step failure for a permanent storage error: names the object and the reason."""
    return dg.Failure(
        description=f"storage error, not retried: {error}",
        metadata={"uri": dg.MetadataValue.text(error.uri),
                  "reason": dg.MetadataValue.text(error.reason),
                  "detail": dg.MetadataValue.text(error.detail)},
        allow_retries=False,
    )


@contextmanager
def fail_fast_on_permanent_errors() -> Iterator[None]:
    """Re-raise permanent :class:`StorageError` as a non-retried ``dg.Failure``.

    Transient errors and missing objects pass through unchanged: the former for the retry policy,
    the latter for callers that treat a missing object as data (a quarantined clip, a missing
    partition).
    """
    try:
        yield
    except ObjectNotFound:
        raise
    except StorageError as error:
        if error.transient:
            raise
        raise permanent_failure(error) from error


class FailFastObjectStore(ObjectStore):
    """An object store whose permanent errors stop the step at once (see the module docstring)."""

    def __init__(self, inner: ObjectStore):
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
