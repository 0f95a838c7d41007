"""Curation: measure every clip, quarantine what fails, split the rest by speaker.

Bad data cascades, so it is caught here, before features and training.  Every candidate row ends
up in exactly one of two tables:

* ``validated``: the clip passed; it carries its quality metrics (duration, peak/RMS dBFS,
  clipping ratio, DC offset, SNR estimate, speech ratio), the original recording's sample rate and
  bit depth, the alignment confidence (aligned clips only), its outlier score (keywords only),
  its provenance (source, speaker, license, original path) and a speaker-disjoint split;
* ``quarantined``: the dead-letter table, one row per rejected clip or recording with the stage
  that rejected it, a reason code, every reason that applied, the numbers behind them and the
  same provenance.

Upstream stages pass their own dead letters along in the candidate tables: a row whose
``reject_reason`` is set (a corpus entry that never became a recording, an utterance that could
not be aligned, a recipe espeak-ng could not speak) goes straight to quarantine with its
``reject_stage``.  Curation runs over all candidates every time, so after thresholds change a
re-materialization moves clips between the two tables in both directions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from kws_assets.core import schemas
from kws_assets.core.audio import quality
from kws_assets.core.audio.io import AudioInfo, AudioReadError
from kws_assets.core.dataset.outliers import MfccStatsEmbedder, scores_by_label
from kws_assets.core.dataset.splits import assign_splits
from kws_assets.core.features.mfcc import FeatureSpec, single_threaded_torch
from kws_assets.core.parallel import batched_process_map, chunks
from kws_assets.core.review.apply import human_confirmed
from kws_assets.core.storage.clip_store import clip_id_for
from kws_assets.core.tables import (
    CLIP_COLUMNS,
    CLIP_DETAIL_COLUMNS,
    QUALITY_COLUMNS,
    QUARANTINE_COLUMNS,
    REJECT_COLUMNS,
    REVIEW_COLUMNS,
    VALIDATED_COLUMNS,
)
from kws_assets.settings import (
    SILENCE_LABEL,
    UNKNOWN_LABEL,
    AudioSettings,
    FeatureSettings,
    OutlierSettings,
    QualitySettings,
    SplitSettings,
)

# Stages of the quarantine table.
STAGE_INGEST = "ingest"
STAGE_ALIGNMENT = "alignment"
STAGE_CLIP = "clip"
STAGE_SYNTHESIS = "synthesis"
STAGE_QUALITY = "quality"
STAGE_OUTLIER = "outlier"
STAGE_SCHEMA = "schema"
# License of clips this pipeline generates itself, by source.
GENERATED_LICENSES = {
    "synthetic": "generated with espeak-ng (GPL-3.0 voice data)",
    "noise": "generated noise (no license restrictions)",
}
EMBED_BATCH = 256
"""Clips read, measured and embedded together (one parallel work item of :func:`measure_rows`)."""


def empty_clip_table() -> pl.DataFrame:
    return pl.DataFrame(schema=CLIP_COLUMNS)


def clip_table(rows: list[dict]) -> pl.DataFrame:
    """Rows of clip metadata as a table with the standard clip columns and types."""
    if not rows:
        return empty_clip_table()
    table = pl.DataFrame(rows, schema_overrides=CLIP_COLUMNS, infer_schema_length=None)
    table = table.cast(
        {c: t for c, t in {**CLIP_DETAIL_COLUMNS, **REJECT_COLUMNS}.items() if c in table.columns}
    )
    extra = [c for c in table.columns if c not in CLIP_COLUMNS]
    return table.select([*CLIP_COLUMNS, *extra])


def quarantine_table(rows: list[dict]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=QUARANTINE_COLUMNS)
    return pl.DataFrame(
        [{c: r.get(c) for c in QUARANTINE_COLUMNS} for r in rows], schema=QUARANTINE_COLUMNS
    )


# ----------------------------------------------------------------- dead letters of upstream stages


def dead_letter(
    clip_id: str,
    *,
    stage: str,
    reason: str,
    detail: str,
    source: str,
    uri: str,
    label: str = "",
    speaker: str = "",
    language: str = "",
    origin_id: str = "",
    **extra: object,
) -> dict:
    """A candidate row that an upstream stage rejected (see the module docstring)."""
    return {
        "clip_id": clip_id,
        "uri": uri,
        "label": label,
        "source": source,
        "speaker": speaker,
        "language": language,
        "origin_id": origin_id,
        "start_s": None,
        "sample_rate": None,
        "num_samples": None,
        "reject_stage": stage,
        "reject_reason": reason,
        "reject_detail": detail,
        **extra,
    }


def corpus_dead_letters(corpus: pl.DataFrame) -> list[dict]:
    """Dead letters (stage ``ingest``) for the rejected rows of a ``raw_corpus`` table."""
    rows = []
    for rec in corpus.filter(pl.col("reject_reason").is_not_null()).iter_rows(named=True):
        rows.append(
            dead_letter(
                clip_id_for(rec["utterance_id"], STAGE_INGEST),
                stage=STAGE_INGEST,
                reason=rec["reject_reason"],
                detail=rec["reject_detail"] or "",
                source=rec["source"],
                uri=rec["uri"] or rec["original_path"],
                label=rec["clip_label"] or "",
                speaker=rec["speaker"] or "",
                language=rec["language"] or "",
                origin_id=rec["utterance_id"],
                original_path=rec["original_path"],
                license=rec["license"],
                original_sample_rate=rec["sample_rate"],
                original_bit_depth=rec["bit_depth"],
            )
        )
    return rows


def _recordings_by_id(corpus: pl.DataFrame) -> dict[str, dict]:
    return {r["utterance_id"]: r for r in corpus.iter_rows(named=True)}


def recording_dead_letters(failures: list, corpus: pl.DataFrame, stage: str) -> list[dict]:
    """Dead letters for recordings that produced no clips in a later stage.

    ``failures`` are objects with ``utterance_id`` and ``reason`` (and optionally ``detail`` and
    ``oov_words``): alignment failures (stage ``alignment``; reason ``out_of_dictionary`` when
    words could not be pronounced, else ``alignment_failed``) or clip-cutting failures.
    """
    by_id = _recordings_by_id(corpus)
    rows = []
    for failure in failures:
        rec = by_id.get(failure.utterance_id, {})
        oov = tuple(getattr(failure, "oov_words", ()) or ())
        if stage == STAGE_ALIGNMENT:
            reason = quality.OUT_OF_DICTIONARY if oov else quality.ALIGNMENT_FAILED
            detail = failure.reason + (f" (out of dictionary: {', '.join(oov)})" if oov else "")
        else:
            reason = failure.reason
            detail = getattr(failure, "detail", "") or failure.reason
        rows.append(
            dead_letter(
                clip_id_for(failure.utterance_id, stage),
                stage=stage,
                reason=reason,
                detail=detail,
                source=rec.get("source") or failure.utterance_id.split(":", 1)[0],
                uri=rec.get("uri") or getattr(failure, "uri", "") or "",
                label=rec.get("clip_label") or "",
                speaker=rec.get("speaker") or "",
                language=rec.get("language") or "",
                origin_id=failure.utterance_id,
                original_path=rec.get("original_path"),
                license=rec.get("license"),
                original_sample_rate=rec.get("sample_rate"),
                original_bit_depth=rec.get("bit_depth"),
            )
        )
    return rows


def render_dead_letters(failures: list, source: str, language: str) -> list[dict]:
    """Dead letters (stage ``synthesis``) for synthetic recipes that gave no clip: an engine
    could not render them, or (``speech_over_window``) the keyword did not fit the clip."""
    return [
        dead_letter(
            f.clip_id,
            stage=STAGE_SYNTHESIS,
            reason=getattr(f, "code", quality.RENDER_FAILED),
            detail=f.reason,
            source=source,
            uri=f.origin_id,
            label=f.label,
            language=language,
            origin_id=f.origin_id,
        )
        for f in failures
    ]


def clip_candidates(table: pl.DataFrame) -> pl.DataFrame:
    """The rows of a candidate table that are clips (not upstream dead letters)."""
    if "reject_reason" not in table.columns:
        return table
    return table.filter(pl.col("reject_reason").is_null())


def upstream_dead_letters(table: pl.DataFrame) -> pl.DataFrame:
    """The rows of a candidate table that an upstream stage rejected."""
    if "reject_reason" not in table.columns:
        return table.clear()
    return table.filter(pl.col("reject_reason").is_not_null())


# ----------------------------------------------------------------------------------- curation


@dataclass(frozen=True)
class CurationResult:
    validated: pl.DataFrame
    quarantined: pl.DataFrame

    def reason_counts(self) -> dict[str, int]:
        return reason_counts(self.quarantined)


def reason_counts(quarantined: pl.DataFrame) -> dict[str, int]:
    """Quarantined rows per reason code, most frequent first."""
    if quarantined.is_empty():
        return {}
    counts = quarantined.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def reason_table(quarantined: pl.DataFrame) -> pl.DataFrame:
    """Quarantined rows per (stage, reason), with one example each: what the UI shows."""
    if quarantined.is_empty():
        return pl.DataFrame(
            schema={
                "stage": pl.String,
                "reason": pl.String,
                "clips": pl.UInt32,
                "example": pl.String,
            }
        )
    return (
        quarantined.group_by("stage", "reason")
        .agg(
            pl.len().alias("clips"),
            pl.coalesce(pl.col("original_path"), pl.col("uri")).first().alias("example"),
        )
        .sort(["clips", "stage", "reason"], descending=[True, False, False])
    )


def _quarantine_row(
    row: dict, stage: str, reason: str, detail: str, reasons: list[str] | None = None
) -> dict:
    out = {c: row.get(c) for c in QUARANTINE_COLUMNS}
    for text_column in ("clip_id", "source", "uri", "label", "speaker"):
        out[text_column] = out[text_column] or ""
    out.update(
        stage=stage,
        reason=reason,
        detail=detail,
        reasons=",".join(reasons or [reason]),
        original_sample_rate=row.get("original_sample_rate"),
        original_bit_depth=row.get("original_bit_depth"),
    )
    return out


def _with_detail_columns(candidates: pl.DataFrame) -> pl.DataFrame:
    """Candidates with every optional column present (null where a source has none) and the
    license of generated sources filled in."""
    missing = {
        c: t
        for c, t in {**CLIP_DETAIL_COLUMNS, **REJECT_COLUMNS, **REVIEW_COLUMNS}.items()
        if c not in candidates.columns
    }
    table = candidates.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in missing.items()])
    generated = pl.col("source").replace_strict(
        GENERATED_LICENSES, default=None, return_dtype=pl.String
    )
    return table.with_columns(pl.coalesce(pl.col("license"), generated).alias("license"))


ClipEmbedder = Callable[[list[tuple[dict, AudioInfo]]], list[np.ndarray | None]]
"""Outlier embeddings of a batch of readable clips (row, audio): one per clip, None where the
clip is not embedded."""


def measure_rows(
    clips: pl.DataFrame,
    read_clip: Callable[[str], AudioInfo],
    embed: ClipEmbedder | None = None,
    workers: int = 1,
) -> tuple[list[dict], list[dict], dict[str, np.ndarray]]:
    """Quality metrics for each readable clip, quarantine rows for unreadable ones, and (with
    ``embed``) the outlier embeddings by clip id.

    Clips are read and measured EMBED_BATCH at a time on ``workers`` processes (results in table
    order, the same for any worker count); a batch's samples are dropped once it is measured.
    """

    def measure_batch(rows: list[dict]) -> tuple[list[dict], list[dict], dict[str, np.ndarray]]:
        measured, rejected, readable = [], [], []
        for row in rows:
            try:
                info = read_clip(row["uri"])
            except AudioReadError as exc:
                reason = quality.read_error_reason(exc)
                rejected.append(_quarantine_row(row, STAGE_QUALITY, reason, str(exc)))
                continue
            metrics = quality.measure_clip(info.samples, info.sample_rate).as_dict()
            measured.append(
                {
                    **row,
                    **{c: float(metrics[c]) for c in QUALITY_COLUMNS},
                    "sample_rate": int(info.sample_rate),
                    "num_samples": len(info.samples),
                }
            )
            readable.append((row, info))
        embeddings = {}
        if embed is not None and readable:
            for (row, _), vector in zip(readable, embed(readable), strict=True):
                if vector is not None:
                    embeddings[row["clip_id"]] = vector
        return measured, rejected, embeddings

    measured, rejected, embeddings = [], [], {}
    batches = chunks(clips.iter_rows(named=True), EMBED_BATCH)
    with single_threaded_torch():  # per-batch MFCC kernels: one thread per worker
        for batch_measured, batch_rejected, batch_embeddings in batched_process_map(
            measure_batch, batches, workers, batch_size=1
        ):
            measured += batch_measured
            rejected += batch_rejected
            embeddings.update(batch_embeddings)
    return measured, rejected, embeddings


@dataclass(frozen=True)
class CurationSettings:
    """What curation judges clips by, built by the caller from the config's sections: the
    keywords (only their clips are outlier-scored), the clip format (and the MFCCs the outlier
    embedding uses), the quality gate, the lowest alignment confidence, the outlier rule and
    the split fractions."""

    keywords: list[str]
    audio: AudioSettings
    features: FeatureSettings
    quality: QualitySettings
    min_confidence: float
    outliers: OutlierSettings
    splits: SplitSettings

    @property
    def labels(self) -> list[str]:
        """Class labels in model output order: silence, unknown, then the keywords."""
        return [SILENCE_LABEL, UNKNOWN_LABEL, *self.keywords]


def outlier_embedder(settings: CurationSettings) -> ClipEmbedder | None:
    """The outlier embeddings of keyword clips in the configured clip format, a batch at a time
    (:func:`measure_rows`); None when outliers are off."""
    if not settings.outliers.enabled:
        return None
    spec = FeatureSpec.from_settings(settings.features, settings.audio)
    embedder = MfccStatsEmbedder(spec)
    keywords = set(settings.keywords)

    def embed(clips: list[tuple[dict, AudioInfo]]) -> list[np.ndarray | None]:
        wanted = [
            i
            for i, (row, info) in enumerate(clips)
            if row["label"] in keywords
            and info.sample_rate == spec.sample_rate
            and len(info.samples) == spec.clip_samples
        ]
        out: list[np.ndarray | None] = [None] * len(clips)
        if wanted:
            vectors = embedder(np.stack([clips[i][1].samples for i in wanted]))
            for i, vector in zip(wanted, vectors, strict=True):
                out[i] = vector
        return out

    return embed


def score_outliers(
    rows: list[dict],
    embeddings: dict[str, np.ndarray],
    outliers: OutlierSettings,
    keywords: list[str],
) -> None:
    """Set ``outlier_score`` on every row (None where not scored): keyword clips with an
    embedding, of keywords with at least ``outliers.min_clips`` such clips."""
    for row in rows:
        row["outlier_score"] = None
    if not outliers.enabled:
        return
    keyword_rows = [r for r in rows if r["label"] in set(keywords) and r["clip_id"] in embeddings]
    if not keyword_rows:
        return
    scores = scores_by_label(
        [r["label"] for r in keyword_rows],
        np.stack([embeddings[r["clip_id"]] for r in keyword_rows]),
        set(keywords),
        outliers.min_clips,
    )
    for row, score in zip(keyword_rows, scores, strict=True):
        row["outlier_score"] = None if np.isnan(score) else float(score)


def _metrics_detail(row: dict) -> str:
    return ", ".join(f"{c}={row[c]:.3g}" for c in QUALITY_COLUMNS)


def curate(
    candidates: pl.DataFrame,
    settings: CurationSettings,
    read_clip: Callable[[str], AudioInfo],
    workers: int = 1,
) -> CurationResult:
    """Quality gate, outlier flagging, speaker split and schema check over all candidates (the
    clips read and measured on ``workers`` processes: the same result for any count)."""
    table = _with_detail_columns(candidates)
    quarantined = [
        _quarantine_row(
            row,
            row["reject_stage"] or STAGE_INGEST,
            row["reject_reason"],
            row["reject_detail"] or "",
        )
        for row in upstream_dead_letters(table)
        .unique(subset="clip_id", keep="first", maintain_order=True)
        .iter_rows(named=True)
    ]
    measured, unreadable, embeddings = measure_rows(
        clip_candidates(table), read_clip, outlier_embedder(settings), workers
    )
    quarantined += unreadable

    passing = []
    for row in measured:
        metrics = quality.ClipQuality(
            **{c: row[c] for c in QUALITY_COLUMNS}, sample_rate=row["sample_rate"]
        )
        reasons = quality.rejection_reasons(
            metrics,
            row["label"],
            settings.quality,
            expected_sr=settings.audio.sample_rate,
            expected_duration_s=settings.audio.clip_seconds,
            is_silence=row["label"] == SILENCE_LABEL,
        )
        # A person who heard the clip outranks the aligner's confidence (core.review.apply).
        if not human_confirmed(row):
            reasons += quality.alignment_reasons(row.get("confidence"), settings.min_confidence)
        if reasons:
            row["outlier_score"] = None
            quarantined.append(
                _quarantine_row(
                    row,
                    STAGE_QUALITY,
                    reasons[0],
                    "; ".join(reasons) + " | " + _metrics_detail(row),
                    reasons,
                )
            )
        else:
            passing.append(row)

    score_outliers(passing, embeddings, settings.outliers, settings.keywords)
    kept = []
    outliers = settings.outliers
    for row in passing:
        score = row["outlier_score"]
        if (
            outliers.quarantine
            and score is not None
            and score > outliers.threshold
            and not human_confirmed(row)
        ):
            quarantined.append(
                _quarantine_row(
                    row,
                    STAGE_OUTLIER,
                    quality.OUTLIER,
                    f"outlier_score={score:.2f} > threshold {outliers.threshold:g} among "
                    f"'{row['label']}' clips | " + _metrics_detail(row),
                )
            )
        else:
            kept.append(row)

    splits = assign_splits([r["speaker"] for r in kept], settings.splits)
    for row, split in zip(kept, splits, strict=True):
        row["split"] = split
    validated = (
        pl.DataFrame(
            [{c: r.get(c) for c in VALIDATED_COLUMNS} for r in kept], schema=VALIDATED_COLUMNS
        )
        if kept
        else pl.DataFrame(schema=VALIDATED_COLUMNS)
    )

    audio = settings.audio
    schema = schemas.clip_table_schema(settings.labels, audio.sample_rate, audio.clip_samples)
    good, failures = schemas.validate(validated, schema)
    if failures.height:
        bad_ids = set(validated["clip_id"].to_list()) - set(good["clip_id"].to_list())
        checks = _failure_checks_by_clip(validated, failures)
        for row in validated.iter_rows(named=True):
            if row["clip_id"] in bad_ids:
                quarantined.append(
                    _quarantine_row(
                        row,
                        STAGE_SCHEMA,
                        quality.SCHEMA_VIOLATION,
                        checks.get(row["clip_id"], "failed the clip table schema"),
                    )
                )
    return CurationResult(good.sort("clip_id"), quarantine_table(quarantined).sort("clip_id"))


def _failure_checks_by_clip(table: pl.DataFrame, failures: pl.DataFrame) -> dict[str, str]:
    """Map clip_id -> the schema checks it failed, from pandera's failure cases."""
    if "index" not in failures.columns:
        return {}
    out: dict[str, list[str]] = {}
    ids = table["clip_id"].to_list()
    for row in failures.iter_rows(named=True):
        index = row.get("index")
        if index is None or not 0 <= int(index) < len(ids):
            continue
        what = f"{row.get('column') or ''}:{row.get('check') or ''}".strip(":")
        out.setdefault(ids[int(index)], []).append(what)
    return {k: "; ".join(sorted(set(v))) for k, v in out.items()}


__all__ = [
    "CLIP_COLUMNS",
    "QUALITY_COLUMNS",
    "QUARANTINE_COLUMNS",
    "VALIDATED_COLUMNS",
    "CurationResult",
    "CurationSettings",
    "clip_candidates",
    "clip_table",
    "corpus_dead_letters",
    "curate",
    "dead_letter",
    "reason_counts",
    "recording_dead_letters",
    "render_dead_letters",
    "upstream_dead_letters",
]
