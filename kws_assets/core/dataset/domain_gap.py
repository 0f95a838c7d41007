"""How far synthetic speech is from recorded speech, per keyword, in feature space.

"Validate synthetic data against real-world benchmarks": for each keyword, the Fréchet distance
between Gaussian fits of per-clip MFCC summaries of its synthetic clips and of its clips cut from
recorded corpora, next to the same distance between two halves of the recorded clips (the noise
floor of the estimate). A synthetic-vs-real distance many times the halves' distance means the
synthetic clips sit in another region of feature space than the recordings: what a model learns
from them may not transfer. Shown on the data card and in the evaluation report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from kws_assets.core.tables import MFCC_COLUMN, is_augmented

FRECHET_EPS = 1e-6


def clip_embedding(mfcc: np.ndarray) -> np.ndarray:
    """Per-clip summary of MFCCs ``[n, frames, coeffs]``: mean and std of each coefficient."""
    values = np.asarray(mfcc, dtype=np.float64)
    return np.concatenate([values.mean(axis=1), values.std(axis=1)], axis=1)


def frechet_distance(a: np.ndarray, b: np.ndarray, diagonal: bool = False) -> float:
    """Fréchet (2-Wasserstein) distance between Gaussian fits of two sets of vectors ``[n, d]``,
    as FID computes it.  ``diagonal`` fits independent dimensions: far less noisy with the few
    dozen clips a keyword may have, where a full covariance is mostly estimation error."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    if diagonal:
        return float(((mu_a - mu_b) ** 2).sum() + ((a.std(axis=0) - b.std(axis=0)) ** 2).sum())
    cov_a = np.cov(a, rowvar=False) + FRECHET_EPS * np.eye(a.shape[1])
    cov_b = np.cov(b, rowvar=False) + FRECHET_EPS * np.eye(b.shape[1])
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = float(np.sqrt(np.clip(middle, 0, None)).sum())
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def synthetic_real_gap(
    table: pl.DataFrame | pl.LazyFrame,
    keywords: Sequence[str],
    min_clips: int = 5,
    synthetic_source: str = "synthetic",
) -> pl.DataFrame:
    """Per keyword: the (diagonal) Fréchet distance between clip embeddings of synthetic clips and
    of clips from recorded corpora (every other source, augmented copies excluded), both
    standardised by the pooled statistics so distances compare across keywords; plus, as a
    yardstick, the distance between two halves of the real clips.  Keywords with fewer than
    ``min_clips`` on either side get null distances.  A lazy ``table`` is read one keyword's
    original clips at a time."""
    rows = []
    originals = table.lazy().filter(~is_augmented() & (pl.col("source") != "noise"))
    for keyword in keywords:
        clips = originals.filter(pl.col("label") == keyword).select("source", MFCC_COLUMN).collect()
        synth = clips.filter(pl.col("source") == synthetic_source)
        real = clips.filter(pl.col("source") != synthetic_source)
        row = {
            "keyword": keyword,
            "synthetic_clips": synth.height,
            "real_clips": real.height,
            "frechet_synthetic_real": None,
            "frechet_real_halves": None,
        }
        if synth.height >= min_clips and real.height >= min_clips:
            a = clip_embedding(synth[MFCC_COLUMN].to_numpy())
            b = clip_embedding(real[MFCC_COLUMN].to_numpy())
            pooled = np.concatenate([a, b])
            mean, std = pooled.mean(axis=0), pooled.std(axis=0) + FRECHET_EPS
            a, b = (a - mean) / std, (b - mean) / std
            row["frechet_synthetic_real"] = round(frechet_distance(a, b, diagonal=True), 3)
            if real.height >= 2 * min_clips:
                half = real.height // 2
                row["frechet_real_halves"] = round(
                    frechet_distance(b[:half], b[half:], diagonal=True), 3
                )
        rows.append(row)
    schema = {
        "keyword": pl.String,
        "synthetic_clips": pl.Int64,
        "real_clips": pl.Int64,
        "frechet_synthetic_real": pl.Float64,
        "frechet_real_halves": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
