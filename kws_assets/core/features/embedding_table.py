"""The speech-embedding table: one row per clip, with a fixed-shape ``[n_frames, 96]`` column.

The counterpart of the MFCC table (:mod:`kws_assets.core.features.table`) for the
``speech_embedding`` model family.  Clips are embedded by the same
:class:`~kws_assets.core.features.speech_embedding.SpeechEmbeddingFrontEnd` the classifier uses at
inference time, ``batch_size`` clips per onnxruntime call.  Reading, change detection and the
feature cache are the MFCC table's: clip bytes through a :class:`ClipReader`, cache hits decided by
:func:`plan_batch` (stamp, then checksum), cached rows in a :class:`FeatureCache` file whose name
carries a hash of the front-end spec (context, graph digests) instead of the MFCC config.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from kws_assets.core.features.speech_embedding import (
    DEFAULT_BATCH_CLIPS,
    EmbeddingSpec,
    SpeechEmbeddingFrontEnd,
)
from kws_assets.core.features.table import (
    KEY_COLUMNS,
    ClipReader,
    FeatureCache,
    MfccTableStats,
    decode_clip_into,
    plan_batch,
    split_arrays,
    write_feature_batches,
)
from kws_assets.core.parallel import thread_map
from kws_assets.core.storage.parquet_stream import ParquetBatchWriter, StagedParquet
from kws_assets.core.tables import ColumnType

EMBEDDING_COLUMN = "embedding"
CACHE_FORMAT = "speech-embedding-cache-v1"
"""Goes into the cache file's name with the front-end spec: change it when the maths change."""
CACHE_NAME = "embedding"


def embedding_dtype(spec: EmbeddingSpec) -> pl.DataType:
    return pl.Array(pl.Float32, spec.shape)


def table_schema(spec: EmbeddingSpec) -> dict[str, ColumnType]:
    """Columns of the embedding table: the clip keys, then the embedding array."""
    return {**dict.fromkeys(KEY_COLUMNS, pl.String), EMBEDDING_COLUMN: embedding_dtype(spec)}


def cache_schema(spec: EmbeddingSpec) -> dict[str, ColumnType]:
    """Columns of the embedding cache file (the MFCC cache's, with the embedding array)."""
    return {
        "clip_id": pl.String,
        "uri": pl.String,
        "size": pl.Int64,
        "mtime_ns": pl.Int64,
        "stamped_ns": pl.Int64,
        "checksum": pl.String,
        EMBEDDING_COLUMN: embedding_dtype(spec),
    }


def embedding_config_hash(spec: EmbeddingSpec) -> str:
    """A short hash of everything that determines a clip's embeddings (graph digests included)."""
    payload = {**spec.to_dict(), "format": CACHE_FORMAT}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def embedding_cache(
    folder: str | os.PathLike[str], spec: EmbeddingSpec, name: str = CACHE_NAME
) -> FeatureCache:
    """The cache file for ``spec`` in ``folder``: ``<name>-<config hash>.parquet``."""
    return FeatureCache(Path(folder) / f"{name}-{embedding_config_hash(spec)}.parquet")


@dataclass
class EmbeddingTableStats(MfccTableStats):
    """What one embedding-table build did (rows, embedded now vs copied from the cache, time)."""


@dataclass
class EmbeddingBatch:
    """One batch of the stream: its clip rows, their embeddings, and what the cache needs."""

    rows: pl.DataFrame
    embedding: np.ndarray  # [n, n_frames, 96] float32
    featurized: int  # rows computed now (the rest came from the cache)
    sizes: list[int | None] = field(default_factory=list)
    mtimes_ns: list[int | None] = field(default_factory=list)
    stamped_ns: list[int | None] = field(default_factory=list)
    checksums: list[str] = field(default_factory=list)


def iter_embedding_batches(
    clips: pl.DataFrame,
    front_end: SpeechEmbeddingFrontEnd,
    reader: ClipReader | None = None,
    *,
    cache: FeatureCache | None = None,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_CLIPS,
) -> Iterator[EmbeddingBatch]:
    """The embeddings of every clip of ``clips`` (needs ``clip_id`` and ``uri``), batch by batch,
    in table order.  With a ``cache`` unchanged clips are copied from it; unreadable clips raise
    :class:`~kws_assets.core.audio.io.AudioReadError`.  ``workers`` threads read and embed batches
    side by side (onnxruntime releases the GIL); give the front end ``threads=1`` then."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if "uri" not in clips.columns or "clip_id" not in clips.columns:
        raise ValueError(f"clips need 'clip_id' and 'uri' columns, got {clips.columns}")
    reader = reader or ClipReader()
    spec = front_end.spec
    caching = cache is not None
    index = cache.load_index() if cache is not None else {}
    cache_rows = cache.open_rows(EMBEDDING_COLUMN) if index and cache is not None else None
    buffers = threading.local()

    def embed(batch: pl.DataFrame) -> EmbeddingBatch:
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
        out = np.empty((batch.height, *spec.shape), dtype=np.float32)
        if plan.computed_at.size:
            out[plan.computed_at] = front_end(audio[: plan.computed_at.size])
        if plan.cached_at.size and cache_rows is not None:
            out[plan.cached_at] = cache_rows.take(plan.cache_rows)
        return EmbeddingBatch(
            batch,
            out,
            int(plan.computed_at.size),
            plan.sizes,
            plan.mtimes_ns,
            plan.stamped_ns,
            plan.checksums,
        )

    batches = (clips.slice(start, batch_size) for start in range(0, clips.height, batch_size))
    try:
        yield from thread_map(embed, batches, workers)
    finally:
        if cache_rows is not None:
            cache_rows.close()


def _table_frame(batch: EmbeddingBatch, spec: EmbeddingSpec) -> pl.DataFrame:
    return batch.rows.select(list(KEY_COLUMNS)).with_columns(
        pl.Series(EMBEDDING_COLUMN, batch.embedding, dtype=embedding_dtype(spec))
    )


def _cache_frame(batch: EmbeddingBatch, spec: EmbeddingSpec) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "clip_id": batch.rows["clip_id"],
            "uri": batch.rows["uri"],
            "size": pl.Series(batch.sizes, dtype=pl.Int64),
            "mtime_ns": pl.Series(batch.mtimes_ns, dtype=pl.Int64),
            "stamped_ns": pl.Series(batch.stamped_ns, dtype=pl.Int64),
            "checksum": pl.Series(batch.checksums, dtype=pl.String),
            EMBEDDING_COLUMN: pl.Series(batch.embedding, dtype=embedding_dtype(spec)),
        }
    )


def write_embedding_table(
    clips: pl.DataFrame,
    front_end: SpeechEmbeddingFrontEnd,
    writer: ParquetBatchWriter,
    reader: ClipReader | None = None,
    *,
    cache: FeatureCache | None = None,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_CLIPS,
) -> EmbeddingTableStats:
    """Embed every clip of ``clips`` (``uri`` and the key columns) into ``writer``, in order.

    With a cache, unchanged clips are copied from it and the cache is replaced by one holding
    exactly these clips once the table is complete.
    """
    spec = front_end.spec
    return write_feature_batches(
        iter_embedding_batches(
            clips, front_end, reader, cache=cache, workers=workers, batch_size=batch_size
        ),
        writer,
        EmbeddingTableStats(workers=workers),
        cache,
        cache_schema(spec),
        table_frame=lambda batch: _table_frame(batch, spec),
        cache_frame=lambda batch: _cache_frame(batch, spec),
        values=lambda batch: batch.embedding,
    )


def stage_embedding_table(
    clips: pl.DataFrame,
    front_end: SpeechEmbeddingFrontEnd,
    staging_folder: str | os.PathLike[str],
    reader: ClipReader | None = None,
    *,
    cache: FeatureCache | None = None,
    workers: int = 1,
    batch_size: int = DEFAULT_BATCH_CLIPS,
) -> tuple[StagedParquet, EmbeddingTableStats]:
    """The embedding table as a staged Parquet file in ``staging_folder`` (see
    :func:`write_embedding_table`); the caller moves it into place or discards it."""
    with ParquetBatchWriter(
        staging_folder, table_schema(front_end.spec), prefix="embedding_table-"
    ) as writer:
        stats = write_embedding_table(
            clips, front_end, writer, reader, cache=cache, workers=workers, batch_size=batch_size
        )
    assert writer.staged is not None
    stats.row_groups = writer.row_groups
    return writer.staged, stats


def build_embedding_table(
    clips: pl.DataFrame,
    front_end: SpeechEmbeddingFrontEnd,
    reader: ClipReader | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_CLIPS,
) -> pl.DataFrame:
    """The embedding table in memory (small tables and tests; the asset streams to Parquet)."""
    parts = [
        _table_frame(batch, front_end.spec)
        for batch in iter_embedding_batches(clips, front_end, reader, batch_size=batch_size)
    ]
    if not parts:
        return pl.DataFrame(schema=table_schema(front_end.spec))
    return pl.concat(parts)


def embedding_split_arrays(
    table: pl.DataFrame, labels: list[str], split: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(x [n, n_frames, 96] float32, y [n] int64)`` for one split of the embedding table."""
    return split_arrays(table, labels, split, column=EMBEDDING_COLUMN)
