"""The MFCC feature table: one row per validated clip, with a fixed-shape MFCC array column.

Clips are read and featurized in bounded batches with the same :class:`MfccExtractor` the
classifier uses at inference time, so training and serving share one feature path.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import polars as pl

from kws_assets.core.audio import AudioInfo, fit_to_length
from kws_assets.core.features import FeatureSpec, MfccExtractor

READ_BATCH = 256
KEY_COLUMNS = ("clip_id", "label", "split", "speaker", "source")


def mfcc_dtype(spec: FeatureSpec) -> pl.DataType:
    return pl.Array(pl.Float32, (spec.n_frames, spec.n_mfcc))


def _batches(df: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    for start in range(0, df.height, size):
        yield df.slice(start, size)


def build_mfcc_table(clips: pl.DataFrame, spec: FeatureSpec,
                     read_clip: Callable[[str], AudioInfo], batch_size: int = READ_BATCH) -> pl.DataFrame:
    """Featurize every clip of ``clips`` (needs ``uri`` and the key columns)."""
    extractor = MfccExtractor(spec)
    parts = []
    for batch in _batches(clips, batch_size):
        audio = np.stack([fit_to_length(read_clip(uri).samples, spec.clip_samples)
                          for uri in batch["uri"].to_list()]) if batch.height else np.zeros(
            (0, spec.clip_samples), dtype=np.float32)
        mfcc = extractor(audio.astype(np.float32))
        part = batch.select(list(KEY_COLUMNS)).with_columns(
            pl.Series("mfcc", mfcc.astype(np.float32), dtype=mfcc_dtype(spec)))
        parts.append(part)
    if not parts:
        return pl.DataFrame(schema={**{c: pl.String for c in KEY_COLUMNS}, "mfcc": mfcc_dtype(spec)})
    return pl.concat(parts)


def split_arrays(table: pl.DataFrame, labels: list[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x [n, frames, mfcc] float32, y [n] int64)`` for one split, labels indexed by ``labels``."""
    rows = table.filter(pl.col("split") == split)
    index = {label: i for i, label in enumerate(labels)}
    unknown = set(rows["label"].unique().to_list()) - set(index)
    if unknown:
        raise ValueError(f"feature table has labels the model does not know: {sorted(unknown)}")
    x = rows["mfcc"].to_numpy().astype(np.float32)
    y = np.array([index[label] for label in rows["label"].to_list()], dtype=np.int64)
    return x, y
