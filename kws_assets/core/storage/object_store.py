"""Byte objects under one root — a local folder or an S3 prefix — written so readers never see half.

An object is addressed by a *key*, a relative POSIX path such as ``synthetic/yes/3f2a.wav``; its
*URI* is what tables store: the absolute file path for a local root, ``s3://bucket/prefix/key``
on S3.  Both backends give the same guarantees:

* **Atomic writes.**  Locally an object is written to a staging file inside the root
  (``<root>/.partial/<host>-<pid>-<random>.tmp``, same filesystem), flushed, fsynced and renamed
  into place with ``os.replace``; on S3 one ``PutObject`` of the finished bytes.  A reader sees the
  old object, the new object or nothing — never a prefix of one.
* **Durable writes, in batches.**  Each local object is fsynced before its rename and its folder
  after (a power cut cannot leave a renamed-but-empty file).  That is two journal commits per
  object (6-10 ms each here), which capped the per-clip stages; inside
  :meth:`ObjectStore.batch_writes` the objects are staged complete, then one file-system sync
  makes all their bytes durable, then they are renamed into place and one more sync makes the
  renames durable: the same guarantee, two commits per batch.  Until the block ends the batch's
  objects are not visible to other readers (this store's ``exists``/``get_bytes`` see them).
* **Leftovers are invisible and swept.**  A writer killed between staging and rename leaves a file
  in ``.partial/`` only; :meth:`ObjectStore.list_keys` never lists it, and
  :meth:`LocalObjectStore.sweep_partials` removes staging files whose writing process is gone.
* **Errors say what and why.**  Every failure is a :class:`StorageError` naming the URI and a
  short reason (``AccessDenied``, ``NoSuchBucket``, ``InternalError``...) and whether it is
  *transient* (worth retrying: 5xx, throttling, dropped connections) or permanent.  A missing
  object is :class:`ObjectNotFound`, which is also a ``FileNotFoundError``.

S3 clients come from the caller (the Dagster layer builds them with ``dagster-aws``), with
botocore's own retry policy for transient errors; credentials are resolved by boto3 from the
environment and never pass through this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import socket
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

from kws_assets.core.storage.atomic_files import fsync_folder

STAGING_DIR = ".partial"
STAGING_SUFFIX = ".tmp"
# Staging files written by another host are only swept when older than this (their writer's
# liveness cannot be checked from here).
FOREIGN_PARTIAL_MAX_AGE_S = 6 * 3600.0

S3_SCHEME = "s3://"

# Reasons that are not an S3 error code.
REASON_MISSING = "missing"
REASON_UNREADABLE = "unreadable"
REASON_UNWRITABLE = "unwritable"
REASON_CONNECTION = "connection_error"
REASON_NO_CREDENTIALS = "no_credentials"

# S3 error codes worth retrying (besides every HTTP 5xx).
TRANSIENT_S3_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "TooManyRequestsException",
        "PriorRequestNotComplete",
    }
)
NOT_FOUND_S3_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Local errno values that may clear up by themselves.
TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ETIMEDOUT})


class StorageError(OSError):
    """A storage operation on ``uri`` failed for ``reason``; ``transient`` says retrying may
    help."""

    def __init__(self, uri: str, reason: str, detail: str = "", transient: bool = False) -> None:
        self.uri = uri
        self.reason = reason
        self.detail = detail
        self.transient = transient
        kind = "transient" if transient else "permanent"
        message = f"{uri}: {reason} ({kind})"
        if detail:
            message += f": {detail}"
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(
        self,
    ) -> tuple[
        type[StorageError], tuple[str, str, str, bool]
    ]:  # picklable across process pools and Dagster's multiprocess executor
        return (type(self), (self.uri, self.reason, self.detail, self.transient))


class ObjectNotFound(StorageError, FileNotFoundError):
    """No object at ``uri`` (a FileNotFoundError too, so generic callers handle it naturally)."""

    def __init__(
        self, uri: str, reason: str = REASON_MISSING, detail: str = "", transient: bool = False
    ) -> None:
        super().__init__(uri, reason, detail, transient)


def check_key(key: str) -> str:
    """A key is a relative POSIX path without empty, ``.``/``..`` or hidden (``.x``) parts."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"object key must be a non-empty string, got {key!r}")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise ValueError(f"object key {key!r} must be a relative POSIX path")
    parts = key.split("/")
    for part in parts:
        if not part or part.startswith("."):
            raise ValueError(f"object key {key!r} has an empty, '.'/'..' or hidden component")
    return key


class ObjectStore(ABC):
    """Whole objects of bytes under one root; see the module docstring for the guarantees."""

    @property
    @abstractmethod
    def root_uri(self) -> str:
        """The URI of the root (a folder path or ``s3://bucket/prefix``)."""

    @abstractmethod
    def uri_for(self, key: str) -> str:
        """The URI of ``key`` (validated; never outside the root)."""

    @abstractmethod
    def key_for_uri(self, uri: str) -> str:
        """The key of a URI under this root; ValueError for a URI outside it."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` at ``key`` atomically (replacing any previous object); return its URI."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The whole object; :class:`ObjectNotFound` when there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether a complete object is stored at ``key``."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at ``key`` (no error if it is already gone)."""

    @abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Keys of complete objects under ``prefix`` (a folder-like key prefix), sorted."""

    def read_uri(self, uri: str) -> bytes:
        """The bytes of the object a table row points at."""
        return self.get_bytes(self.key_for_uri(uri))

    @contextlib.contextmanager
    def batch_writes(self) -> Iterator[None]:
        """Writes inside the block are made durable together when it ends (see the module
        docstring); a store whose single writes are already atomic and durable (S3's
        ``PutObject``) needs nothing, which is this default."""
        yield

    def local_path(self, key: str) -> Path | None:
        """Where ``key`` lives on this machine's disk, for a store that is a local folder;
        None for a remote store (its objects are only reachable through the methods above)."""
        return None


# ------------------------------------------------------------------------------------ local disk


def _partial_owner(name: str) -> tuple[str, int] | None:
    """``(host, pid)`` encoded in a staging file name, or None for names this module did not
    make."""
    stem = name[: -len(STAGING_SUFFIX)] if name.endswith(STAGING_SUFFIX) else None
    if stem is None:
        return None
    host, sep, rest = stem.rpartition("~")
    if not sep:
        return None
    pid_text = rest.split("-", 1)[0]
    return (host, int(pid_text)) if pid_text.isdigit() else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _load_syncfs() -> Any:
    """libc's ``syncfs(fd)`` (Linux): flush one file system's dirty data and metadata in one
    call; None where it does not exist (then each staged file is fsynced instead)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6", use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes = [ctypes.c_int]
    syncfs.restype = ctypes.c_int
    return syncfs


_SYNCFS = _load_syncfs()


class _WriteBatch:
    """Objects staged by :meth:`LocalObjectStore.put_bytes` inside ``batch_writes``: target ->
    complete staging file, published together."""

    def __init__(self) -> None:
        self.depth = 0
        self.staged: dict[Path, Path] = {}


@dataclass(frozen=True)
class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; writes staged in ``root/.partial`` and renamed into place.

    ``durable`` fsyncs each file before the rename (and its folder after), so a power cut cannot
    leave a renamed-but-empty file; a killed process cannot leave a partial one either way.
    """

    root: Path
    durable: bool = True
    _batch: _WriteBatch = field(default_factory=_WriteBatch, compare=False, repr=False)

    @classmethod
    def at(cls, root: str | os.PathLike[str], durable: bool = True) -> LocalObjectStore:
        return cls(Path(root).expanduser().resolve(), durable)

    @property
    def root_uri(self) -> str:
        return str(self.root)

    @property
    def staging(self) -> Path:
        return self.root / STAGING_DIR

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        # Symlinks inside the root could still point elsewhere: resolve and check.
        resolved = path.resolve()
        if self.root not in resolved.parents:
            raise ValueError(f"object key {key!r} escapes the store root {self.root}")
        return path

    def uri_for(self, key: str) -> str:
        return str(self._path(key))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def key_for_uri(self, uri: str) -> str:
        path = Path(uri).expanduser()
        if not path.is_absolute():
            raise ValueError(f"{uri!r} is not an absolute path under the store root {self.root}")
        try:
            key = path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            raise ValueError(f"{uri!r} is outside the store root {self.root}") from None
        return check_key(key)

    def put_bytes(self, key: str, data: bytes) -> str:
        target = self._path(key)
        uri = str(target)
        try:
            self.staging.mkdir(parents=True, exist_ok=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            prefix = f"{socket.gethostname()}~{os.getpid()}-"
            fd, tmp = tempfile.mkstemp(dir=self.staging, prefix=prefix, suffix=STAGING_SUFFIX)
        except OSError as exc:
            raise _local_error(uri, exc, REASON_UNWRITABLE) from exc
        batched = self.durable and self._batch.depth > 0
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                if self.durable and not batched:
                    os.fsync(fh.fileno())
            if batched:
                previous = self._batch.staged.pop(target, None)
                if previous is not None:  # written twice in one batch: the last write wins
                    previous.unlink(missing_ok=True)
                self._batch.staged[target] = Path(tmp)
                return uri
            os.replace(tmp, target)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise _local_error(uri, exc, REASON_UNWRITABLE) from exc
            raise
        if self.durable:
            fsync_folder(target.parent)
        return uri

    @contextlib.contextmanager
    def batch_writes(self) -> Iterator[None]:
        if not self.durable:
            yield
            return
        self._batch.depth += 1
        try:
            yield
        finally:
            self._batch.depth -= 1
            if self._batch.depth == 0:
                self._publish()

    def _publish(self) -> None:
        """Sync the staged files' bytes, rename them into place, sync the renames.  Runs on any
        exit of the batch: every staged file is complete, so publishing it is always safe."""
        staged, self._batch.staged = self._batch.staged, {}
        if not staged:
            return
        try:
            self._sync(staged.values())
            for target, tmp in staged.items():
                os.replace(tmp, target)
            self._sync_folders({target.parent for target in staged})
        except OSError as exc:
            for tmp in staged.values():
                tmp.unlink(missing_ok=True)
            raise _local_error(str(self.root), exc, REASON_UNWRITABLE) from exc

    def _sync(self, files: Iterable[Path]) -> None:
        if _SYNCFS is not None and self._syncfs():
            return
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _sync_folders(self, folders: set[Path]) -> None:
        if _SYNCFS is not None and self._syncfs():
            return
        for folder in sorted(folders):
            fsync_folder(folder)

    def _syncfs(self) -> bool:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            return bool(_SYNCFS(fd) == 0)
        finally:
            os.close(fd)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        path = self._batch.staged.get(path, path)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(str(path), detail="no such file") from exc
        except IsADirectoryError as exc:
            raise ObjectNotFound(str(path), detail="a folder, not an object") from exc
        except OSError as exc:
            raise _local_error(str(path), exc, REASON_UNREADABLE) from exc

    def exists(self, key: str) -> bool:
        path = self._path(key)
        return path in self._batch.staged or path.is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            staged = self._batch.staged.pop(path, None)
            if staged is not None:
                staged.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _local_error(str(path), exc, REASON_UNWRITABLE) from exc

    def list_keys(self, prefix: str = "") -> list[str]:
        start = self.root / check_key(prefix.strip("/")) if prefix.strip("/") else self.root
        if not start.is_dir():
            return []
        keys = []
        for folder, subdirs, files in os.walk(start):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
            rel = Path(folder).relative_to(self.root)
            keys += [(rel / name).as_posix() for name in files if not name.startswith(".")]
        return sorted(keys)

    def partial_files(self) -> list[Path]:
        """Staging files present now (writes in progress, or left by killed writers)."""
        if not self.staging.is_dir():
            return []
        return sorted(p for p in self.staging.iterdir() if p.is_file())

    def sweep_partials(self, foreign_max_age_s: float = FOREIGN_PARTIAL_MAX_AGE_S) -> list[Path]:
        """Remove staging files whose writer is gone; return what was removed.

        A file written on this host is removed when its process no longer exists; one from another
        host (a shared volume) or of unknown origin only when older than ``foreign_max_age_s``.
        Writes still in progress are never touched.
        """
        host = socket.gethostname()
        now = time.time()
        removed = []
        for path in self.partial_files():
            owner = _partial_owner(path.name)
            if owner is not None and owner[0] == host:
                stale = not _process_alive(owner[1])
            else:
                try:
                    stale = now - path.stat().st_mtime > foreign_max_age_s
                except FileNotFoundError:
                    continue
            if stale:
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


def _local_error(uri: str, exc: OSError, reason: str) -> StorageError:
    detail = f"{type(exc).__name__}: {exc.strerror or exc}"
    return StorageError(uri, reason, detail, transient=exc.errno in TRANSIENT_ERRNOS)


# -------------------------------------------------------------------------------------------- S3


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith(S3_SCHEME):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise ValueError(f"{uri!r} names no bucket")
    return bucket, key


class S3ObjectStore(ObjectStore):
    """Objects under ``s3://bucket/prefix`` through a boto3 S3 client the caller configured.

    One ``PutObject`` per write (a finished object is atomic on S3); transient errors are retried
    by the client's botocore retry configuration before they surface here as transient
    :class:`StorageError`.
    """

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"S3 bucket name {bucket!r} is not valid")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.root_uri!r})"

    @property
    def root_uri(self) -> str:
        return (
            f"{S3_SCHEME}{self.bucket}/{self.prefix}"
            if self.prefix
            else f"{S3_SCHEME}{self.bucket}"
        )

    def _object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri_for(self, key: str) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self._object_key(key)}"

    def key_for_uri(self, uri: str) -> str:
        bucket, object_key = parse_s3_uri(uri)
        lead = f"{self.prefix}/" if self.prefix else ""
        if bucket != self.bucket or not object_key.startswith(lead):
            raise ValueError(f"{uri!r} is outside the store root {self.root_uri}")
        return check_key(object_key[len(lead) :])

    def put_bytes(self, key: str, data: bytes) -> str:
        uri = self.uri_for(key)
        with _s3_errors(uri):
            self.client.put_object(Bucket=self.bucket, Key=self._object_key(key), Body=bytes(data))
        return uri

    def get_bytes(self, key: str) -> bytes:
        uri = self.uri_for(key)
        with _s3_errors(uri):
            response = self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))
            return response["Body"].read()

    def exists(self, key: str) -> bool:
        uri = self.uri_for(key)
        try:
            with _s3_errors(uri):
                self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        uri = self.uri_for(key)
        with _s3_errors(uri):
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))

    def list_keys(self, prefix: str = "") -> list[str]:
        sub = prefix.strip("/")
        lead = self._object_key(sub) + "/" if sub else (f"{self.prefix}/" if self.prefix else "")
        keys = []
        with _s3_errors(f"{S3_SCHEME}{self.bucket}/{lead}"):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=lead):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    rel = key[len(self.prefix) + 1 :] if self.prefix else key
                    keys.append(rel)
        return sorted(keys)


class _s3_errors:
    """Context manager turning botocore exceptions into :class:`StorageError` for ``uri``."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # never swallows: passes the exception on, or raises its StorageError
        if exc is None or isinstance(exc, StorageError):
            return
        error = classify_s3_error(self.uri, exc)
        if error is None:
            return
        raise error from exc


def classify_s3_error(uri: str, exc: BaseException) -> StorageError | None:
    """The :class:`StorageError` a botocore exception means for ``uri`` (None: not a boto error)."""
    from botocore import exceptions as boto

    if isinstance(exc, boto.ClientError):
        response = getattr(exc, "response", {}) or {}
        error = response.get("Error", {}) or {}
        meta = response.get("ResponseMetadata", {}) or {}
        code = str(error.get("Code") or "Unknown")
        status = int(meta.get("HTTPStatusCode") or 0)
        attempts = int(meta.get("RetryAttempts") or 0) + 1
        message = str(error.get("Message") or "").strip()
        detail = (
            f"HTTP {status}" + (f" {message}" if message else "") + f" after {attempts} attempt(s)"
        )
        if code in NOT_FOUND_S3_CODES or (status == 404 and code != "NoSuchBucket"):
            return ObjectNotFound(uri, REASON_MISSING, detail)
        if code in {"403", "Forbidden"}:  # HEAD responses carry no error body, only the status
            code = "AccessDenied"
            detail += " (S3 also answers 403 for a missing key when ListBucket is not allowed)"
        transient = status >= 500 or status == 429 or code in TRANSIENT_S3_CODES
        return StorageError(uri, code, detail, transient=transient)
    if isinstance(exc, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        return StorageError(
            uri,
            REASON_NO_CREDENTIALS,
            "no AWS credentials in the environment (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, a profile or an instance role)",
        )
    transient_types: tuple[type[BaseException], ...] = (
        boto.HTTPClientError,
        boto.ConnectionError,
        boto.ReadTimeoutError,
        boto.ConnectTimeoutError,
        boto.IncompleteReadError,
        boto.ResponseStreamingError,
    )
    if isinstance(exc, transient_types):
        return StorageError(uri, REASON_CONNECTION, f"{type(exc).__name__}: {exc}", transient=True)
    if isinstance(exc, boto.BotoCoreError):
        return StorageError(uri, type(exc).__name__, str(exc))
    return None


def open_object_store(root: str, s3_client: Any | None = None) -> ObjectStore:
    """A store for a local folder or an ``s3://bucket/prefix`` root (S3 needs a client)."""
    if root.startswith(S3_SCHEME):
        if s3_client is None:
            raise ValueError(f"{root}: an S3 root needs an S3 client")
        bucket, prefix = parse_s3_uri(root)
        return S3ObjectStore(s3_client, bucket, prefix)
    if "://" in root:
        raise ValueError(f"{root}: only local folders and s3:// are supported")
    return LocalObjectStore.at(root)


def relative_key(path: PurePosixPath | str, root: PurePosixPath | str) -> str:
    """``path`` relative to ``root`` as a key (both as POSIX strings)."""
    path_text, root_text = str(path).rstrip("/"), str(root).rstrip("/")
    if not path_text.startswith(root_text + "/"):
        raise ValueError(f"{path_text!r} is not under {root_text!r}")
    return check_key(path_text[len(root_text) + 1 :])
