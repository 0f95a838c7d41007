"""Feature tables: one row per clip, with a fixed-shape feature array column, for any front end.

A model family hands this module a :class:`TableFrontEnd` — how to turn a batch of decoded clips
into features, the column and shape they fill, a key naming everything that determines them — and
gets its table back; the MFCC table and the speech-embedding table are the same code with
different front ends.  Clips are featurized with the front end the classifier uses at inference
time, so training and serving share one feature path.  The table is built as a stream:

- the clip list is cut into batches of ``batch_size`` rows, in table order;
- ``workers`` threads each take a batch: read the WAV bytes, decode them (a numpy fast path for
  the clip store's mono PCM_16 files) and run the front end (torch and onnxruntime release the
  GIL in their kernels, so the threads use all cores); at most ``workers + 1`` batches are in
  flight, so memory does not grow with the number of clips;
- finished batches are written, in order, as Parquet row groups (:class:`ParquetBatchWriter`).

Repeated work is avoided with a :class:`FeatureCache`: a Parquet file under a name carrying the
front end's cache key (a hash of its configuration), with one row per clip of the last build —
clip id, URI, the file's size and modification time, a checksum of its bytes, and its features.
On the next build a clip whose id, URI, size and mtime are unchanged is copied from the cache
without opening the file; a clip whose file was rewritten (or whose stamp was taken too soon
after a write to be trusted) is read and checksummed, and recomputed only if its bytes changed.
"""

from __future__ import annotations

import io
import os
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, cast

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from kws_assets.core.audio.io import (
    REASON_MISSING,
    REASON_UNREADABLE,
    AudioReadError,
    fit_to_length,
    read_audio,
)
from kws_assets.core.audio.pcm_wav import pcm16_mono_samples, pcm16_to_float
from kws_assets.core.parallel import Progress, available_cores, process_map, thread_map
from kws_assets.core.storage.parquet_stream import ParquetBatchWriter, StagedParquet

if TYPE_CHECKING:  # s3fs loads only when an s3:// clip is read
    from kws_assets.core.storage.s3 import S3Connection

from kws_assets.core.tables import KEY_COLUMNS, ColumnType

READ_BATCH = 256
"""Clips per work item: one thread reads, decodes and featurizes this many clips at a time."""

CACHED_ROW_GROUPS = 2
"""Row groups of the old cache kept decoded while copying hits (the access is nearly in order)."""

RACY_STAMP_NS = 2_000_000_000
"""A file modified less than this before it was stat'ed may change again within the same
timestamp tick without its mtime moving; such stamps are not trusted (git's "racy" rule), the
file is read and checksummed instead."""

Stamp = tuple[int, int]  # (size in bytes, modification time in ns)


class ClipSpec(Protocol):
    """What decoding needs of a front end's spec: the rate and the clip length in samples."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def clip_samples(self) -> int: ...


def default_workers() -> int:
    """Threads the feature path uses by default: one per CPU core this process may run on."""
    return available_cores()


@dataclass(frozen=True)
class TableFrontEnd:
    """A model family's front end as a feature table sees it.

    ``features`` maps decoded clips ``[n, clip_samples]`` to ``[n, *shape]`` float32 (the same
    call the family's classifier makes at inference time); ``cache_key`` changes whenever the
    features of a clip would (a hash of the spec and a format version), so a cache file of another
    configuration is never read; ``running`` wraps a whole build (the MFCC front end pins torch to
    one thread per worker there).
    """

    spec: ClipSpec
    column: str
    shape: tuple[int, ...]
    features: Callable[[np.ndarray], np.ndarray]
    cache_key: str
    cache_name: str
    """Prefix of the cache file's name (``<cache_name>-<cache_key>.parquet``)."""
    staging_prefix: str
    """Prefix of the staged table's file name."""
    batch_size: int = READ_BATCH
    running: Callable[[], AbstractContextManager[object]] = nullcontext
    holds_gil: bool = False
    """The front end is a Python loop over small C calls that keep the GIL (the micro front end
    steps its C library 10 ms at a time): its batches are featurized on worker processes, where
    threads would take turns on one core."""

    @property
    def dtype(self) -> pl.DataType:
        return pl.Array(pl.Float32, self.shape)


def table_schema(front_end: TableFrontEnd) -> dict[str, ColumnType]:
    """Columns of a feature table: the clip keys, then the feature array."""
    return {**dict.fromkeys(KEY_COLUMNS, pl.String), front_end.column: front_end.dtype}


def cache_schema(front_end: TableFrontEnd) -> dict[str, ColumnType]:
    """Columns of the feature cache file."""
    return {
        "clip_id": pl.String,
        "uri": pl.String,
        "size": pl.Int64,
        "mtime_ns": pl.Int64,
        "stamped_ns": pl.Int64,
        "checksum": pl.String,
        front_end.column: front_end.dtype,
    }


def read_uri_bytes(uri: str, s3: S3Connection | None = None) -> bytes:
    """The bytes of a clip URI: a local path, or any ``scheme://`` location universal-pathlib
    knows; ``s3://`` ones with the endpoint, region and retries of ``s3`` (None: AWS defaults
    from the environment; pass ``functools.partial(read_uri_bytes, s3=...)`` as a
    :class:`ClipReader`'s ``load_bytes``).  A missing or unreadable file raises
    :class:`AudioReadError` naming it; an S3 outage that outlasted the client's retries raises a
    transient ``StorageError`` (the clip is fine, the step should be retried)."""
    from kws_assets.core.storage.s3 import S3Connection, transient_storage_error

    try:
        if "://" in uri:
            return (s3 or S3Connection()).upath(uri).read_bytes()
        with open(uri, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise AudioReadError(uri, REASON_MISSING, str(exc)) from exc
    except OSError as exc:
        outage = transient_storage_error(uri, exc) if "://" in uri else None
        if outage is not None:
            raise outage from exc
        raise AudioReadError(uri, REASON_UNREADABLE, f"{type(exc).__name__}: {exc}") from exc


def local_file_stamp(uri: str) -> Stamp | None:
    """``(size, mtime_ns)`` of a local file; ``None`` for remote URIs or files that cannot be
    stat'ed (those are then read and checksummed instead)."""
    if "://" in uri:
        return None
    try:
        st = os.stat(uri)
    except OSError:
        return None
    return (int(st.st_size), int(st.st_mtime_ns))


@dataclass(frozen=True)
class ClipReader:
    """How the feature path reaches clip files: their bytes, and a cheap change stamp."""

    load_bytes: Callable[[str], bytes] = read_uri_bytes
    stamp: Callable[[str], Stamp | None] = local_file_stamp


def content_checksum(data: bytes) -> str:
    """A 64-bit checksum of a file's bytes (CRC-32 and Adler-32): tells a rewritten-but-identical
    clip from a changed one.  It detects changes, it is no defence against crafted collisions."""
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def decode_clip_into(data: bytes, uri: str, spec: ClipSpec, out: np.ndarray) -> None:
    """Decode WAV bytes into ``out`` (float32 ``[clip_samples]``): mono at the spec's rate, cut
    or zero-padded to the clip length.  Errors are :class:`AudioReadError` naming ``uri``.

    Mono 16-bit PCM at the spec's rate (what the clip store writes) is converted straight from
    the file bytes into ``out``; everything else goes through ``read_audio``.
    """
    pcm = pcm16_mono_samples(data, spec.sample_rate)
    if pcm is not None and pcm.size:
        keep = min(pcm.size, out.size)
        pcm16_to_float(pcm[:keep], out=out[:keep])
        out[keep:] = 0.0
        return
    stream = io.BytesIO(data)
    stream.name = uri  # read_audio names the source in its errors
    out[:] = fit_to_length(read_audio(stream, target_sr=spec.sample_rate).samples, out.size)


def decode_clip(data: bytes, uri: str, spec: ClipSpec) -> np.ndarray:
    """WAV bytes as a model-ready float32 clip (see :func:`decode_clip_into`)."""
    out = np.empty(spec.clip_samples, dtype=np.float32)
    decode_clip_into(data, uri, spec, out)
    return out


class CacheEntry(NamedTuple):
    uri: str
    size: int | None
    mtime_ns: int | None
    stamped_ns: int | None  # when the stamp was taken
    checksum: str
    row: int

    def stamp_matches(self, uri: str, stamp: Stamp | None) -> bool:
        """Whether the file is the one featurized before, judged by its stamp alone."""
        if stamp is None or self.mtime_ns is None or self.stamped_ns is None or uri != self.uri:
            return False
        if self.mtime_ns + RACY_STAMP_NS > self.stamped_ns:
            return False  # modified just before it was stat'ed: the stamp proves nothing
        return (self.size, self.mtime_ns) == stamp


class _CacheRows:
    """Random access to the feature rows of a cache file, decoding a few row groups at a time."""

    def __init__(self, path: Path, column: str) -> None:
        self._file = pq.ParquetFile(path)
        self._column = column
        meta = self._file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._decoded: OrderedDict[int, np.ndarray] = OrderedDict()

    def _row_group(self, index: int) -> np.ndarray:
        if index in self._decoded:
            self._decoded.move_to_end(index)
            return self._decoded[index]
        # a pyarrow Table in, so a DataFrame out (from_arrow is typed for Series too)
        table = cast(
            "pl.DataFrame", pl.from_arrow(self._file.read_row_group(index, columns=[self._column]))
        )
        values = table[self._column].to_numpy().astype(np.float32, copy=False)
        self._decoded[index] = values
        while len(self._decoded) > CACHED_ROW_GROUPS:
            self._decoded.popitem(last=False)
        return values

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The features of the given cache rows, in the given order."""
        groups = np.searchsorted(self._starts, rows, side="right") - 1
        out: np.ndarray | None = None
        for group in np.unique(groups):
            values = self._row_group(int(group))
            mask = groups == group
            picked = values[rows[mask] - self._starts[group]]
            if out is None:
                out = np.empty((rows.size, *values.shape[1:]), dtype=np.float32)
            out[mask] = picked
        return out if out is not None else np.empty((0,), np.float32)

    def close(self) -> None:
        self._decoded.clear()
        self._file.close()


@dataclass
class FeatureCache:
    """Features of clips featurized before, in ``<folder>/<name>-<front end's cache key>.parquet``.

    The file holds exactly the clips of the last successful build; it is replaced atomically at
    the end of each build.  An unreadable cache file is ignored (and rebuilt), never an error.
    """

    path: Path

    @classmethod
    def for_front_end(
        cls, folder: str | os.PathLike[str], front_end: TableFrontEnd, name: str | None = None
    ) -> FeatureCache:
        """The cache of ``front_end`` in ``folder`` (``name`` replaces its ``cache_name``)."""
        return cls(Path(folder) / f"{name or front_end.cache_name}-{front_end.cache_key}.parquet")

    def load_index(self) -> dict[str, CacheEntry]:
        """``clip_id -> CacheEntry`` of the cached clips; empty when there is no usable cache."""
        if not self.path.is_file():
            return {}
        try:
            keys = pl.read_parquet(
                self.path, columns=["clip_id", "uri", "size", "mtime_ns", "stamped_ns", "checksum"]
            )
        except Exception:  # a damaged or foreign file: rebuild rather than fail the run
            return {}
        return {
            clip_id: CacheEntry(uri, size, mtime, stamped, checksum, row)
            for row, (clip_id, uri, size, mtime, stamped, checksum) in enumerate(keys.iter_rows())
        }

    def open_rows(self, column: str) -> _CacheRows:
        """Random access to the feature column ``column`` of the cached rows."""
        return _CacheRows(self.path, column)


@dataclass
class TableStats:
    """What one build did: rows written, how many were featurized vs copied from the cache."""

    rows: int = 0
    featurized: int = 0
    from_cache: int = 0
    row_groups: int = 0
    seconds: float = 0.0
    all_finite: bool = True
    workers: int = 1

    @property
    def clips_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class FeatureBatch:
    """One batch of the stream: its clip rows, their features, and what the cache needs to know."""

    rows: pl.DataFrame
    values: np.ndarray  # [n, *front_end.shape] float32 (MFCC un-normalised)
    featurized: int  # how many of the rows were computed now (the rest came from the cache)
    sizes: list[int | None] = field(default_factory=list)
    mtimes_ns: list[int | None] = field(default_factory=list)
    stamped_ns: list[int | None] = field(default_factory=list)
    checksums: list[str] = field(default_factory=list)


@dataclass
class _WorkResult:
    rows: pl.DataFrame
    computed_at: np.ndarray  # positions in the batch featurized now
    computed: np.ndarray  # their features [k, *shape]
    cached_at: np.ndarray  # positions in the batch found in the cache
    cache_rows: np.ndarray  # their rows in the old cache file
    sizes: list[int | None]
    mtimes_ns: list[int | None]
    stamped_ns: list[int | None]
    checksums: list[str]


@dataclass
class BatchPlan:
    """Which clips of a batch must be computed and which come from the cache (and where)."""

    computed_at: np.ndarray  # positions in the batch to compute now, in decode-slot order
    cached_at: np.ndarray  # positions in the batch found in the cache
    cache_rows: np.ndarray  # their rows in the old cache file
    sizes: list[int | None]
    mtimes_ns: list[int | None]
    stamped_ns: list[int | None]
    checksums: list[str]


def plan_batch(
    batch: pl.DataFrame,
    reader: ClipReader,
    index: dict[str, CacheEntry],
    caching: bool,
    decode: Callable[[int, bytes, str], None],
) -> BatchPlan:
    """Sort one batch (``clip_id``, ``uri``) into cache hits and clips to compute.

    A clip whose stamp matches its cache entry is not read; one whose bytes checksum to its
    entry's is not decoded; every other clip is read and handed to ``decode(slot, data, uri)``,
    slots counting up from 0 in batch order.
    """
    computed_at: list[int] = []
    cached_at: list[int] = []
    rows: list[int] = []
    sizes: list[int | None] = []
    mtimes: list[int | None] = []
    stamped: list[int | None] = []
    checksums: list[str] = []
    for pos, (clip_id, uri) in enumerate(
        zip(batch["clip_id"].to_list(), batch["uri"].to_list(), strict=True)
    ):
        stamp = reader.stamp(uri) if caching else None
        entry = index.get(clip_id)
        sizes.append(stamp[0] if stamp else None)
        mtimes.append(stamp[1] if stamp else None)
        stamped.append(time.time_ns() if stamp else None)
        if entry is not None and entry.stamp_matches(uri, stamp):
            checksums.append(entry.checksum)  # untouched since the last build: not even read
            cached_at.append(pos)
            rows.append(entry.row)
            continue
        data = reader.load_bytes(uri)
        checksum = content_checksum(data) if caching else ""
        checksums.append(checksum)
        if entry is not None and entry.checksum == checksum:
            cached_at.append(pos)  # rewritten with the same bytes
            rows.append(entry.row)
            continue
        decode(len(computed_at), data, uri)
        computed_at.append(pos)
    return BatchPlan(
        np.array(computed_at, dtype=np.int64),
        np.array(cached_at, dtype=np.int64),
        np.array(rows, dtype=np.int64),
        sizes,
        mtimes,
        stamped,
        checksums,
    )


def iter_feature_batches(
    clips: pl.DataFrame,
    front_end: TableFrontEnd,
    reader: ClipReader | None = None,
    *,
    cache: FeatureCache | None = None,
    workers: int = 1,
    batch_size: int | None = None,
) -> Iterator[FeatureBatch]:
    """The features of every clip of ``clips`` (needs ``clip_id`` and ``uri``), batch by batch,
    in table order.  With a ``cache``, unchanged clips come from it (and the batches carry the
    stamps and checksums a new cache needs); unreadable clips raise :class:`AudioReadError`."""
    batch_size = batch_size or front_end.batch_size
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if "uri" not in clips.columns or "clip_id" not in clips.columns:
        raise ValueError(f"clips need 'clip_id' and 'uri' columns, got {clips.columns}")
    reader = reader or ClipReader()
    spec = front_end.spec
    caching = cache is not None
    index = cache.load_index() if cache is not None else {}
    cache_rows = cache.open_rows(front_end.column) if index and cache is not None else None

    buffers = threading.local()  # one decode buffer per thread, reused batch after batch

    def featurize(batch: pl.DataFrame) -> _WorkResult:
        audio = getattr(buffers, "audio", None)
        if audio is None or audio.shape[0] < batch.height:
            audio = buffers.audio = np.empty((batch_size, spec.clip_samples), dtype=np.float32)
        plan = plan_batch(
            batch,
            reader,
            index,
            caching,
            lambda slot, data, uri: decode_clip_into(data, uri, spec, audio[slot]),
        )
        computed = (
            front_end.features(audio[: plan.computed_at.size])
            if plan.computed_at.size
            else np.empty((0, *front_end.shape), dtype=np.float32)
        )
        return _WorkResult(
            batch,
            plan.computed_at,
            computed,
            plan.cached_at,
            plan.cache_rows,
            plan.sizes,
            plan.mtimes_ns,
            plan.stamped_ns,
            plan.checksums,
        )

    batches = (clips.slice(start, batch_size) for start in range(0, clips.height, batch_size))
    try:
        with front_end.running():
            parallel_map = process_map if front_end.holds_gil else thread_map
            for result in parallel_map(featurize, batches, workers):
                values = np.empty((result.rows.height, *front_end.shape), dtype=np.float32)
                values[result.computed_at] = result.computed
                if result.cached_at.size and cache_rows is not None:
                    values[result.cached_at] = cache_rows.take(result.cache_rows)
                yield FeatureBatch(
                    result.rows,
                    values,
                    int(result.computed_at.size),
                    result.sizes,
                    result.mtimes_ns,
                    result.stamped_ns,
                    result.checksums,
                )
    finally:
        if cache_rows is not None:
            cache_rows.close()


def _table_frame(batch: FeatureBatch, front_end: TableFrontEnd) -> pl.DataFrame:
    return batch.rows.select(list(KEY_COLUMNS)).with_columns(
        pl.Series(front_end.column, batch.values, dtype=front_end.dtype)
    )


def _cache_frame(batch: FeatureBatch, front_end: TableFrontEnd) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "clip_id": batch.rows["clip_id"],
            "uri": batch.rows["uri"],
            "size": pl.Series(batch.sizes, dtype=pl.Int64),
            "mtime_ns": pl.Series(batch.mtimes_ns, dtype=pl.Int64),
            "stamped_ns": pl.Series(batch.stamped_ns, dtype=pl.Int64),
            "checksum": pl.Series(batch.checksums, dtype=pl.String),
            front_end.column: pl.Series(batch.values, dtype=front_end.dtype),
        }
    )


def write_feature_table(
    clips: pl.DataFrame,
    front_end: TableFrontEnd,
    writer: ParquetBatchWriter,
    reader: ClipReader | None = None,
    *,
    cache: FeatureCache | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> TableStats:
    """Featurize every clip of ``clips`` (needs ``uri`` and the key columns) into ``writer``.

    Rows come out in the order of ``clips``.  With a cache, unchanged clips are copied from it and
    a new cache holding exactly these clips is written beside it, replacing it once the table is
    complete (dropped on failure).  Unreadable clips raise :class:`AudioReadError` naming the file.
    ``progress(done, total)`` hears the clips written so far after each batch.
    """
    workers = workers or default_workers()
    stats = TableStats(workers=workers)
    started = time.perf_counter()
    new_cache = (
        ParquetBatchWriter(cache.path.parent, cache_schema(front_end), prefix=cache.path.stem + "-")
        if cache is not None
        else None
    )
    batches = iter_feature_batches(
        clips, front_end, reader, cache=cache, workers=workers, batch_size=batch_size
    )
    try:
        for batch in batches:
            writer.write(_table_frame(batch, front_end))
            if new_cache is not None:
                new_cache.write(_cache_frame(batch, front_end))
            stats.rows += batch.rows.height
            stats.featurized += batch.featurized
            stats.from_cache += batch.rows.height - batch.featurized
            stats.all_finite = stats.all_finite and bool(np.isfinite(batch.values).all())
            if progress is not None:
                progress(stats.rows, clips.height)
    except BaseException:
        if new_cache is not None:
            new_cache.abort()
        raise
    if new_cache is not None and cache is not None:
        os.replace(new_cache.close().path, cache.path)
    stats.seconds = time.perf_counter() - started
    return stats


def stage_feature_table(
    clips: pl.DataFrame,
    front_end: TableFrontEnd,
    staging_folder: str | os.PathLike[str],
    reader: ClipReader | None = None,
    *,
    cache: FeatureCache | None = None,
    workers: int | None = None,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> tuple[StagedParquet, TableStats]:
    """Build the feature table as a staged Parquet file in ``staging_folder`` (see
    :func:`write_feature_table`); the caller moves it into place or discards it."""
    with ParquetBatchWriter(
        staging_folder, table_schema(front_end), prefix=front_end.staging_prefix
    ) as writer:
        stats = write_feature_table(
            clips,
            front_end,
            writer,
            reader,
            cache=cache,
            workers=workers,
            batch_size=batch_size,
            progress=progress,
        )
    assert writer.staged is not None
    stats.row_groups = writer.row_groups
    return writer.staged, stats


def build_feature_table(
    clips: pl.DataFrame,
    front_end: TableFrontEnd,
    reader: ClipReader | None = None,
    *,
    workers: int | None = None,
    batch_size: int | None = None,
) -> pl.DataFrame:
    """The feature table in memory (for small tables and tests; the asset streams to Parquet)."""
    parts = [
        _table_frame(batch, front_end)
        for batch in iter_feature_batches(
            clips,
            front_end,
            reader,
            workers=workers or default_workers(),
            batch_size=batch_size,
        )
    ]
    if not parts:
        return pl.DataFrame(schema=table_schema(front_end))
    return pl.concat(parts)


def split_arrays(
    table: pl.DataFrame, labels: list[str], split: str, column: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(x [n, *shape] float32, y [n] int64)`` for one split, labels indexed by ``labels``
    (``column`` names the feature array column: the family's ``column``)."""
    rows = table.filter(pl.col("split") == split)
    index = {label: i for i, label in enumerate(labels)}
    unknown = set(rows["label"].unique().to_list()) - set(index)
    if unknown:
        raise ValueError(f"feature table has labels the model does not know: {sorted(unknown)}")
    x = rows[column].to_numpy().astype(np.float32)
    y = np.array([index[label] for label in rows["label"].to_list()], dtype=np.int64)
    return x, y
