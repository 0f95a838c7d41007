"""Every table's columns and the names shared across stages: one home for each.

The tables of the graph, upstream to downstream: ``raw_corpus`` (:data:`CORPUS_SCHEMA`), clip
candidates (``aligned_keywords``, ``unknown_clips``, ``synthetic_clips``: :data:`CLIP_COLUMNS` +
:data:`CLIP_DETAIL_COLUMNS` + :data:`REJECT_COLUMNS`), ``validated_set``
(:data:`VALIDATED_COLUMNS`), ``quarantined_clips`` (:data:`QUARANTINE_COLUMNS`),
``augmented_clips`` (clip columns + :data:`AUGMENTED_COLUMNS`) and the feature tables
(:data:`KEY_COLUMNS` + one array column).  A leaf module: it imports nothing of the project.
"""

from __future__ import annotations

import polars as pl

ColumnType = pl.DataType | type[pl.DataType]
"""A column's dtype as the tables write it: a class (``pl.String``) or an instance
(``pl.Array(pl.Float32, ...)``), the two forms polars accepts in a schema."""

# --- splits --------------------------------------------------------------------------------------
TRAIN = "train"
VAL = "val"
TEST = "test"
SPLITS = (TRAIN, VAL, TEST)
HELDOUT = "heldout"
"""The negative material's other split (beside ``train``): never trained on, measures FA/h."""
MATERIAL_SPLITS = (TRAIN, HELDOUT)

# --- raw_corpus: one row per corpus entry --------------------------------------------------------
CORPUS_SCHEMA: dict[str, ColumnType] = {
    "utterance_id": pl.String,
    "uri": pl.String,
    "transcript": pl.String,
    "speaker": pl.String,
    "language": pl.String,
    "source": pl.String,
    "license": pl.String,
    "original_path": pl.String,
    "clip_label": pl.String,
    "sample_rate": pl.Int64,
    "channels": pl.Int64,
    "subtype": pl.String,
    "bit_depth": pl.Int64,
    "duration_s": pl.Float64,
    "size_bytes": pl.Int64,
    "sha256": pl.String,
    "peak_dbfs": pl.Float64,
    "rms_dbfs": pl.Float64,
    "clipping_ratio": pl.Float64,
    "dc_offset": pl.Float64,
    "reject_reason": pl.String,
    "reject_detail": pl.String,
    "field_tag": pl.String,
}
# What a device said about audio it uploaded (a manifest row's ``tag``; null for every other
# recording): it fired and should not have, or it should have fired and did not.
FALSE_WAKE = "false_wake"
MISSED_WAKE = "missed_wake"
FIELD_TAGS = (FALSE_WAKE, MISSED_WAKE)
# Where a clip cut from a corpus recording came from (nullable for generated clips).
PROVENANCE_COLUMNS: dict[str, ColumnType] = {
    "license": pl.String,
    "original_path": pl.String,
    "original_sample_rate": pl.Int64,
    "original_channels": pl.Int64,
    "original_subtype": pl.String,
    "original_bit_depth": pl.Int64,
    "original_duration_s": pl.Float64,
}

# --- clips ---------------------------------------------------------------------------------------
CLIP_COLUMNS: dict[str, ColumnType] = {
    "clip_id": pl.String,
    "uri": pl.String,
    "label": pl.String,
    "source": pl.String,
    "speaker": pl.String,
    "language": pl.String,
    "origin_id": pl.String,
    "start_s": pl.Float64,
    "sample_rate": pl.Int64,
    "num_samples": pl.Int64,
}
# Nullable columns a clip may carry: where it came from, and what alignment said about it.
CLIP_DETAIL_COLUMNS: dict[str, ColumnType] = {
    **PROVENANCE_COLUMNS,
    "word": pl.String,
    "confidence": pl.Float64,
    "field_tag": pl.String,
}
# Columns by which an upstream stage marks a candidate row as a dead letter.
REJECT_COLUMNS: dict[str, ColumnType] = {
    "reject_stage": pl.String,
    "reject_reason": pl.String,
    "reject_detail": pl.String,
}
# The quality gate's per-clip metrics (kws_assets.core.audio.quality.ClipQuality less sample_rate).
QUALITY_COLUMNS = (
    "duration_s",
    "peak_dbfs",
    "rms_dbfs",
    "clipping_ratio",
    "dc_offset",
    "snr_db",
    "speech_ratio",
)
# What a person decided about a clip (kws_assets.core.review): the action (keep, relabel, reject;
# null = never reviewed), why the clip was in the review queue, and its label before the decision.
REVIEW_COLUMNS: dict[str, ColumnType] = {
    "review": pl.String,
    "review_reason": pl.String,
    "label_before_review": pl.String,
}
VALIDATED_COLUMNS: dict[str, ColumnType] = {
    **CLIP_COLUMNS,
    **CLIP_DETAIL_COLUMNS,
    **dict.fromkeys(QUALITY_COLUMNS, pl.Float64),
    "outlier_score": pl.Float64,
    "split": pl.String,
    **REVIEW_COLUMNS,
}
QUARANTINE_COLUMNS: dict[str, ColumnType] = {
    "clip_id": pl.String,
    "source": pl.String,
    "uri": pl.String,
    "label": pl.String,
    "speaker": pl.String,
    "stage": pl.String,
    "reason": pl.String,
    "detail": pl.String,
    "reasons": pl.String,
    "origin_id": pl.String,
    "original_path": pl.String,
    "license": pl.String,
    "original_sample_rate": pl.Int64,
    "original_bit_depth": pl.Int64,
    "confidence": pl.Float64,
    **dict.fromkeys(QUALITY_COLUMNS, pl.Float64),
    "outlier_score": pl.Float64,
    "field_tag": pl.String,
    **REVIEW_COLUMNS,
}

# --- augmented_clips -----------------------------------------------------------------------------
AUGMENTED_SOURCE_SUFFIX = "+aug"
"""An augmented copy's source is its original's source plus this suffix (``demo+aug``)."""
AUGMENTED_COLUMNS: dict[str, ColumnType] = {"split": pl.String, "augment_params": pl.String}


def is_augmented(source: pl.Expr | None = None) -> pl.Expr:
    """Polars predicate: the row is an augmented copy (its source ends with the suffix)."""
    return (pl.col("source") if source is None else source).str.ends_with(AUGMENTED_SOURCE_SUFFIX)


# --- feature tables ------------------------------------------------------------------------------
KEY_COLUMNS = ("clip_id", "label", "split", "speaker", "source")

MFCC_COLUMN = "mfcc"
"""The feature column of the MFCC table (a fixed-shape array per clip); also the name of the MFCC
family's ONNX/TFLite input."""
EMBEDDING_COLUMN = "embedding"
"""The feature column of the speech-embedding table; also the name of that family's ONNX input."""
MICRO_COLUMN = "micro_features"
"""The feature column of the TFLite-Micro front-end table (the ``micro_wake_word`` family)."""
"""Columns every feature table carries beside its array column."""
