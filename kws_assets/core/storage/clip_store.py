"""The clip store: binary audio lives as WAV objects, tables hold their URIs.

A clip is addressed by a relative key such as ``synthetic/yes/3f2a9c1b0d4e5f60.wav``.  Its URI —
the string tables store — is the absolute file path under a local root, or
``s3://bucket/prefix/synthetic/yes/3f2a9c1b0d4e5f60.wav`` on S3.  The bytes go through an
:class:`~kws_assets.core.storage.object_store.ObjectStore`, so every write is atomic on both
backends (staged file + rename locally, one PUT of a finished object on S3): a reader never sees
half a clip and an interrupted run leaves nothing partial among the clips.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from kws_assets.core.audio.io import (
    REASON_MISSING,
    AudioInfo,
    AudioReadError,
    read_audio,
    wav_bytes,
)
from kws_assets.core.storage.object_store import (
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
)

_SAFE_KEY_PART = re.compile(r"^[A-Za-z0-9_+@=-][A-Za-z0-9_.+@=-]*$")
WAV_SUFFIX = ".wav"


def clip_id_for(*parts: object) -> str:
    """A stable 16-hex-digit id derived from what a clip is (source, origin, label, offset...)."""
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def safe_key_part(text: str) -> str:
    """Make one path component out of a label or source name (keywords may be any script).

    Names that are not plain ASCII, or that start with a dot (hidden, reserved for staging), are
    replaced by a hash: ``_silence_`` and ``yes`` stay readable, ``oui`` too, ``はい`` becomes
    ``x`` + 12 hex digits.
    """
    if _SAFE_KEY_PART.match(text):
        return text
    return "x" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


class ClipStore:
    """WAV clips in an object store (a local folder or an S3 prefix)."""

    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects

    @classmethod
    def at(cls, root: str | os.PathLike[str], durable: bool = True) -> ClipStore:
        """A clip store in a local folder."""
        return cls(LocalObjectStore.at(root, durable=durable))

    @classmethod
    def on_s3(cls, client: Any, bucket: str, prefix: str = "") -> ClipStore:
        """A clip store under ``s3://bucket/prefix`` through a configured boto3 S3 client."""
        return cls(S3ObjectStore(client, bucket, prefix))

    def __repr__(self) -> str:
        return f"ClipStore({self.root_uri!r})"

    @property
    def root_uri(self) -> str:
        return self.objects.root_uri

    def key_for(self, source: str, label: str, clip_id: str) -> str:
        return (
            f"{safe_key_part(source)}/{safe_key_part(label)}/{safe_key_part(clip_id)}{WAV_SUFFIX}"
        )

    def uri_for(self, key: str) -> str:
        """The URI of ``key``; ValueError if the key would escape the store root."""
        return self.objects.uri_for(key)

    def put(self, key: str, samples: np.ndarray, sample_rate: int) -> str:
        """Write one clip (16-bit PCM WAV) atomically and return its URI."""
        return self.objects.put_bytes(key, wav_bytes(samples, sample_rate))

    def exists(self, key: str) -> bool:
        return self.objects.exists(key)

    def batch_writes(self) -> AbstractContextManager[None]:
        """Clips put inside the block are made durable together when it ends (two file-system
        syncs per batch instead of two per clip; see :mod:`~kws_assets.core.storage.object_store`).
        """
        return self.objects.batch_writes()

    def read_bytes(self, uri: str) -> bytes:
        """The stored WAV bytes of the clip at ``uri`` (ObjectNotFound when it is gone)."""
        return self.objects.read_uri(uri)

    def read(self, uri: str, target_sr: int | None = None) -> AudioInfo:
        """Decode the clip at ``uri``.

        A missing or undecodable clip raises :class:`AudioReadError` naming the URI (callers
        quarantine it); storage failures (access denied, the service down after retries) raise
        :class:`~kws_assets.core.storage.object_store.StorageError` and stop the step.
        """
        try:
            data = self.read_bytes(uri)
        except ObjectNotFound as exc:
            raise AudioReadError(
                uri, REASON_MISSING, exc.detail or "not in the clip store"
            ) from exc
        buffer = io.BytesIO(data)
        buffer.name = uri  # read_audio names its errors after the source's name
        return read_audio(buffer, target_sr=target_sr)

    def list_keys(self, prefix: str = "") -> list[str]:
        """Keys of the complete clips under ``prefix`` (staging leftovers never appear)."""
        return [k for k in self.objects.list_keys(prefix) if k.endswith(WAV_SUFFIX)]
