"""Reading one corpus file once: size limit, sha256, decode check, levels — remembered by
(location, size, modification stamp) so an unchanged corpus is not read again.

:func:`inspect_file` returns :class:`FileFacts`: what the file is (hash, sample rate, channels,
frames, libsndfile subtype) and its levels (peak, RMS, clipping, DC), or why it cannot be used
(``error_reason``).  Files under an ``s3://`` (or other remote) root are copied, while they are
hashed, into a content-addressed local mirror; the mirror path is what later stages read, so the
object store is read once per changed object.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
from contextlib import closing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import soundfile as sf
from upath import UPath

from kws_assets.core.audio import quality
from kws_assets.core.audio.io import AudioReadError, SeekSafeBytes, read_audio
from kws_assets.core.corpus.connectors.base import is_remote, local_os_path
from kws_assets.core.storage.atomic_files import write_file_atomic
from kws_assets.core.storage.s3 import transient_storage_error
from kws_assets.settings import IngestSettings

# Bump when what inspect_file measures changes: cached facts of another version are ignored.
FACTS_VERSION = "1"
# Rejections that depend on a configurable limit, not on the file alone: never cached.
LIMIT_REASONS = frozenset({quality.TOO_LONG, quality.TOO_LARGE, quality.TOO_MANY_CHANNELS})
CACHE_FILE = "file_facts.sqlite"
SQLITE_TIMEOUT_S = 60.0
BYTES_PER_MB = 1024 * 1024

# WAV format tags libsndfile decodes; a RIFF file with any other tag is an unsupported encoding.
SUPPORTED_WAV_FORMAT_TAGS = frozenset(
    {
        0x0001,  # PCM
        0x0002,  # Microsoft ADPCM
        0x0003,  # IEEE float
        0x0006,  # A-law
        0x0007,  # mu-law
        0x0011,  # IMA ADPCM
        0x0031,  # GSM 6.10
        0x0055,  # MPEG layer 3 (libsndfile >= 1.1)
        0xFFFE,  # WAVE_FORMAT_EXTENSIBLE
    }
)


@dataclass(frozen=True)
class FileFacts:
    """What one file is, or why it is unusable (``error_reason`` set, the rest may be None)."""

    size_bytes: int
    sha256: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    frames: int | None = None
    subtype: str | None = None
    peak_dbfs: float | None = None
    rms_dbfs: float | None = None
    clipping_ratio: float | None = None
    dc_offset: float | None = None
    error_reason: str | None = None
    error_detail: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.frames is None or not self.sample_rate:
            return None
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class Inspection:
    """The facts of a file, the local path later stages read it from, and whether it was read
    now."""

    facts: FileFacts
    local_uri: str
    read_now: bool


class FileFactsCache:
    """A small SQLite table of FileFacts keyed by (location, size, stamp, FACTS_VERSION).

    Safe for several processes at once (SQLite locking, WAL journal).  ``path=None`` disables it.
    """

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as db, db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    "CREATE TABLE IF NOT EXISTS facts (location TEXT PRIMARY KEY, "
                    "size INTEGER, stamp TEXT, version TEXT, facts TEXT)"
                )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), timeout=SQLITE_TIMEOUT_S)

    def get(self, location: str, size: int, stamp: str) -> FileFacts | None:
        if self.path is None:
            return None
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT size, stamp, version, facts FROM facts WHERE location = ?", (location,)
            ).fetchone()
        if row is None or row[0] != size or row[1] != stamp or row[2] != FACTS_VERSION:
            return None
        return FileFacts(**json.loads(row[3]))

    def put(self, location: str, size: int, stamp: str, facts: FileFacts) -> None:
        if self.path is None:
            return
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?)",
                (location, size, stamp, FACTS_VERSION, json.dumps(asdict(facts))),
            )

    def __len__(self) -> int:
        if self.path is None:
            return 0
        with closing(self._connect()) as db:
            return int(db.execute("SELECT COUNT(*) FROM facts").fetchone()[0])


def wav_format_tag(data: bytes) -> int | None:
    """The format tag of a RIFF/WAVE file's fmt chunk, or None for other data."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        if chunk_id == b"fmt " and pos + 10 <= len(data):
            return struct.unpack("<H", data[pos + 8 : pos + 10])[0]
        pos += 8 + size + (size & 1)
    return None


def _stat(path: UPath) -> tuple[int, str] | FileFacts:
    """(size, stamp) of a regular file, or error facts when it is missing or not a file."""
    if is_remote(path):
        try:
            info = path.fs.info(path.path)
        except FileNotFoundError:
            return FileFacts(0, error_reason=quality.MISSING, error_detail=f"{path} does not exist")
        if info.get("type") != "file":
            return FileFacts(
                0, error_reason=quality.NOT_A_FILE, error_detail=f"{path} is not a file"
            )
        etag = info.get("ETag") or info.get("etag") or ""
        modified = info.get("LastModified") or info.get("mtime") or ""
        stamp = f"{etag}|{modified}"
        return int(info.get("size") or 0), stamp
    local = local_os_path(path)
    try:
        st = os.stat(local)
    except FileNotFoundError:
        return FileFacts(0, error_reason=quality.MISSING, error_detail=f"{local} does not exist")
    except OSError as exc:
        return FileFacts(0, error_reason=quality.UNREADABLE, error_detail=f"{local}: {exc}")
    if not os.path.isfile(local):
        return FileFacts(
            0, error_reason=quality.NOT_A_FILE, error_detail=f"{local} is not a regular file"
        )
    return int(st.st_size), str(st.st_mtime_ns)


def _mirror_path(mirror_dir: Path, sha256: str, name: str) -> Path:
    suffix = os.path.splitext(name)[1].lower()[:8]
    return mirror_dir / sha256[:2] / f"{sha256}{suffix}"


def decode_facts(data: bytes, name: str, limits: IngestSettings) -> FileFacts:
    """Facts of audio bytes: hash, format and levels, or the reason they cannot be used.

    The header is probed first, so a recording longer than ``limits.max_utterance_s``, with more
    than ``limits.max_channels`` channels, declaring more samples than ``limits.max_decoded_mb``
    or than the file can hold is refused without decoding it (no sample array is allocated).
    """
    sha = hashlib.sha256(data).hexdigest()
    size = len(data)
    if size == 0:
        return FileFacts(0, sha, error_reason=quality.EMPTY, error_detail=f"{name}: zero bytes")
    try:
        header = sf.info(SeekSafeBytes(data))
    except Exception:
        header = None
    if header is not None and header.samplerate > 0 and header.frames > 0:
        duration = header.frames / header.samplerate
        if duration > limits.max_utterance_s:
            return FileFacts(
                size,
                sha,
                int(header.samplerate),
                int(header.channels),
                int(header.frames),
                str(header.subtype),
                error_reason=quality.TOO_LONG,
                error_detail=f"{name}: {duration:.1f} s > max_utterance_s "
                f"{limits.max_utterance_s:g}",
            )
    try:
        info = read_audio(
            data,
            max_seconds=limits.max_utterance_s,
            max_channels=limits.max_channels,
            max_decoded_bytes=int(limits.max_decoded_mb * BYTES_PER_MB),
        )
    except AudioReadError as exc:
        reason = quality.read_error_reason(exc)
        detail = exc.detail or reason
        tag = wav_format_tag(data)
        if (
            reason == quality.UNREADABLE
            and tag is not None
            and tag not in SUPPORTED_WAV_FORMAT_TAGS
        ):
            reason, detail = quality.UNSUPPORTED_ENCODING, f"WAV format tag 0x{tag:04X} ({detail})"
        return FileFacts(size, sha, error_reason=reason, error_detail=f"{name}: {detail}")
    levels = quality.measure_levels(info.samples)
    return FileFacts(
        size,
        sha,
        info.original_sample_rate,
        info.original_channels,
        info.frames,
        info.subtype,
        peak_dbfs=levels["peak_dbfs"],
        rms_dbfs=levels["rms_dbfs"],
        clipping_ratio=levels["clipping_ratio"],
        dc_offset=levels["dc_offset"],
    )


def inspect_file(
    path: UPath, limits: IngestSettings, cache: FileFactsCache, mirror_dir: Path | None
) -> Inspection:
    """Facts of one corpus file, from the cache when its (location, size, stamp) is unchanged.

    Missing files, folders and files over ``limits.max_file_mb`` are refused without reading
    them.  For a remote file the bytes are also written to ``mirror_dir`` (content-addressed) and
    the mirror path is returned as ``local_uri``; ``mirror_dir`` must be given for remote files.
    """
    location = str(path)
    remote = is_remote(path)
    stat = _stat(path)
    if isinstance(stat, FileFacts):
        return Inspection(stat, location, read_now=False)
    size, stamp = stat
    limit = limits.max_file_mb * BYTES_PER_MB
    if size > limit:
        return Inspection(
            FileFacts(
                size,
                error_reason=quality.TOO_LARGE,
                error_detail=f"{location}: {size / BYTES_PER_MB:.1f} MB > "
                f"max_file_mb {limits.max_file_mb:g}",
            ),
            location,
            read_now=False,
        )
    if remote and mirror_dir is None:
        raise ValueError(f"{location}: a remote file needs a local mirror folder")
    cached = cache.get(location, size, stamp)
    if cached is not None:
        local_uri = location
        if remote and mirror_dir is not None and cached.sha256:  # (remote implies a mirror)
            mirrored = _mirror_path(mirror_dir, cached.sha256, path.name)
            local_uri = str(mirrored)
            if not mirrored.is_file():
                cached = None
        if cached is not None:
            return Inspection(cached, local_uri, read_now=False)
    try:
        data = path.read_bytes()
    except OSError as exc:
        outage = transient_storage_error(location, exc) if remote else None
        if outage is not None:  # an outage is retried by the step, not a rejected recording
            raise outage from exc
        return Inspection(
            FileFacts(
                size,
                error_reason=quality.UNREADABLE,
                error_detail=f"{location}: {type(exc).__name__}: {exc}",
            ),
            location,
            read_now=True,
        )
    facts = decode_facts(data, location, limits)
    local_uri = location
    if remote and mirror_dir is not None and facts.sha256:
        mirrored = _mirror_path(mirror_dir, facts.sha256, path.name)
        if not mirrored.is_file():
            write_file_atomic(mirrored, data)
        local_uri = str(mirrored)
    if facts.error_reason not in LIMIT_REASONS:  # the limit may be raised later: decide again
        cache.put(location, size, stamp, facts)
    return Inspection(facts, local_uri, read_now=True)


FACT_FIELDS = tuple(f.name for f in fields(FileFacts))
