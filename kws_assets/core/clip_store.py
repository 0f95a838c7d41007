"""The clip store: binary audio lives as WAV files, tables hold their URIs.

A clip is addressed by a relative key such as ``synthetic/yes/3f2a9c1b0d4e5f60.wav``; its URI is
the absolute path of the file under the store root.  Writes are atomic (temporary file, then
rename), so a reader never sees half a clip and an interrupted run leaves nothing partial behind.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws_assets.core.audio import AudioInfo, read_audio, write_wav

_SAFE_KEY_PART = re.compile(r"^[A-Za-z0-9_.+@=-]+$")


def clip_id_for(*parts: object) -> str:
    """A stable 16-hex-digit id derived from what a clip is (source, origin, label, offset...)."""
    text = "|".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def safe_key_part(text: str) -> str:
    """Make one path component out of a label or source name (keywords may be any script)."""
    if _SAFE_KEY_PART.match(text) and text not in {".", ".."}:
        return text
    return "x" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class ClipStore:
    """WAV files under one root folder."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "ClipStore":
        return cls(Path(root).expanduser().resolve())

    def key_for(self, source: str, label: str, clip_id: str) -> str:
        return f"{safe_key_part(source)}/{safe_key_part(label)}/{clip_id}.wav"

    def uri_for(self, key: str) -> str:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"clip key {key!r} escapes the clip store root {self.root}")
        return str(path)

    def put(self, key: str, samples: np.ndarray, sample_rate: int) -> str:
        """Write one clip (16-bit PCM) atomically and return its URI."""
        uri = self.uri_for(key)
        write_wav(uri, samples, sample_rate)
        return uri

    def exists(self, key: str) -> bool:
        return Path(self.uri_for(key)).is_file()

    def read(self, uri: str, target_sr: int | None = None) -> AudioInfo:
        return read_audio(uri, target_sr=target_sr)
