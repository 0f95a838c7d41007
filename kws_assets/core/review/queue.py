"""The review queue: the clips the pipeline is least sure of, ranked for a person's ear.

Automated labelling decides every clip alone: an aligned word whose confidence is just above
``alignment.min_confidence`` goes into training, one just below goes to quarantine, and a clip
whose label the teacher contradicts with 0.99 probability trains the model anyway.  The
labelling case study this project follows answers that with *targeted* verification: spend the
reviewer's time where the machine is closest to its own thresholds or contradicts itself.  Each
queued clip carries one reason and a score in [0, 1] (1 = most worth hearing):

* :data:`NEAR_MIN_CONFIDENCE` — a validated aligned clip whose confidence lies within
  ``review.confidence_margin`` above ``min_confidence``; 1 at the threshold.
* :data:`NEAR_OUTLIER` — a validated keyword clip whose outlier score lies within
  ``review.outlier_margin`` below ``outliers.threshold``; 1 at the threshold.
* :data:`QUARANTINED_BY_MARGIN` — a clip quarantined for low confidence or as an outlier that
  missed the threshold by less than the margin; 1 at the threshold.
* :data:`TEACHER_DISAGREES` — the teacher's top-1 is another label with probability at least
  ``review.disagreement_confidence``; the score is that probability.
* :data:`REAL_MISCLASSIFIED` — a clip recorded by a person (not generated here) whose label the
  teacher gets wrong at any confidence; the score is the teacher's probability.
* :data:`FIELD_FALSE_WAKE` / :data:`FIELD_MISSED_WAKE` — audio a device uploaded around a false
  or missed activation, held back until a person confirms it; score 1 (always first): the
  model's own mistakes in the field are the data it lacks most.

A clip under several reasons is queued once, under its highest score (the others listed in
``reasons``).  Clips a person already decided about (``review`` set) are not queued again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from kws_assets.core.audio.quality import LOW_ALIGNMENT_CONFIDENCE, OUTLIER
from kws_assets.core.review.apply import AWAITING_REVIEW
from kws_assets.core.tables import FALSE_WAKE, MISSED_WAKE, is_augmented
from kws_assets.settings import ReviewSettings

NEAR_MIN_CONFIDENCE = "near_min_confidence"
NEAR_OUTLIER = "near_outlier_threshold"
QUARANTINED_BY_MARGIN = "quarantined_by_margin"
TEACHER_DISAGREES = "teacher_disagrees"
REAL_MISCLASSIFIED = "real_misclassified"
FIELD_FALSE_WAKE = "field_false_wake"
FIELD_MISSED_WAKE = "field_missed_wake"
FIELD_REASONS = {FALSE_WAKE: FIELD_FALSE_WAKE, MISSED_WAKE: FIELD_MISSED_WAKE}
QUEUE_REASONS = (
    FIELD_FALSE_WAKE,
    FIELD_MISSED_WAKE,
    QUARANTINED_BY_MARGIN,
    NEAR_MIN_CONFIDENCE,
    NEAR_OUTLIER,
    TEACHER_DISAGREES,
    REAL_MISCLASSIFIED,
)
VALIDATED = "validated"
QUARANTINED = "quarantined"
QUEUE_COLUMNS: dict[str, type[pl.DataType]] = {
    "rank": pl.Int64,
    "clip_id": pl.String,
    "data_version": pl.String,
    "uri": pl.String,
    "label": pl.String,
    "source": pl.String,
    "speaker": pl.String,
    "origin": pl.String,
    "in_set": pl.String,
    "reason": pl.String,
    "score": pl.Float64,
    "detail": pl.String,
    "reasons": pl.String,
}
PREDICTION_COLUMNS: dict[str, type[pl.DataType]] = {
    "clip_id": pl.String,
    "predicted": pl.String,
    "probability": pl.Float64,
}
_CANDIDATE = ("clip_id", "uri", "label", "source", "speaker", "in_set", "reason", "score", "detail")


def predictions(ids: Sequence[str], logits: np.ndarray, labels: Sequence[str]) -> pl.DataFrame:
    """A model's top-1 label and its softmax probability per clip (:data:`PREDICTION_COLUMNS`)."""
    if len(ids) == 0:
        return pl.DataFrame(schema=PREDICTION_COLUMNS)
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    top = probs.argmax(axis=1)
    return pl.DataFrame(
        {
            "clip_id": list(ids),
            "predicted": [labels[i] for i in top],
            "probability": probs[np.arange(len(top)), top],
        },
        schema=PREDICTION_COLUMNS,
    )


def data_version(validated: pl.DataFrame, quarantined: pl.DataFrame) -> str:
    """A digest of which clips are in which table under which label: the version of the data a
    queue was ranked from (a decision records the one its reviewer saw)."""
    digest = hashlib.sha256()
    for name, table, column in (
        (VALIDATED, validated, "split"),
        (QUARANTINED, quarantined, "reason"),
    ):
        rows = table.select("clip_id", "label", column).sort("clip_id").rows()
        digest.update(name.encode())
        for row in rows:
            digest.update("|".join(str(v) for v in row).encode("utf-8") + b"\n")
    return digest.hexdigest()[:16]


def _closeness(distance: pl.Expr, margin: float) -> pl.Expr:
    """1 at the threshold, falling linearly to 0 at ``margin`` away."""
    return (1.0 - distance / margin).clip(0.0, 1.0)


def _unreviewed(table: pl.DataFrame) -> pl.DataFrame:
    if "review" not in table.columns:
        return table
    return table.filter(pl.col("review").is_null())


def _near_thresholds(
    validated: pl.DataFrame,
    review: ReviewSettings,
    min_confidence: float,
    outlier_threshold: float,
) -> list[pl.DataFrame]:
    conf, score = pl.col("confidence"), pl.col("outlier_score")
    base = validated.with_columns(pl.lit(VALIDATED).alias("in_set"))
    near_confidence = base.filter(
        conf.is_not_null()
        & (conf >= min_confidence)
        & (conf < min_confidence + review.confidence_margin)
    ).with_columns(
        pl.lit(NEAR_MIN_CONFIDENCE).alias("reason"),
        _closeness(conf - min_confidence, review.confidence_margin).alias("score"),
        pl.format("confidence {} (min {})", conf.round(3), pl.lit(min_confidence)).alias("detail"),
    )
    near_outlier = base.filter(
        score.is_not_null()
        & (score <= outlier_threshold)
        & (score > outlier_threshold - review.outlier_margin)
    ).with_columns(
        pl.lit(NEAR_OUTLIER).alias("reason"),
        _closeness(outlier_threshold - score, review.outlier_margin).alias("score"),
        pl.format(
            "outlier score {} (threshold {})", score.round(2), pl.lit(outlier_threshold)
        ).alias("detail"),
    )
    return [near_confidence.select(_CANDIDATE), near_outlier.select(_CANDIDATE)]


def _quarantined_by_margin(
    quarantined: pl.DataFrame,
    review: ReviewSettings,
    min_confidence: float,
    outlier_threshold: float,
) -> pl.DataFrame:
    conf, score, reason = pl.col("confidence"), pl.col("outlier_score"), pl.col("reason")
    low = (
        (reason == LOW_ALIGNMENT_CONFIDENCE)
        & conf.is_not_null()
        & (conf > min_confidence - review.confidence_margin)
    )
    far = (
        (reason == OUTLIER)
        & score.is_not_null()
        & (score < outlier_threshold + review.outlier_margin)
    )
    return (
        quarantined.filter((low | far) & (pl.col("uri") != ""))
        .with_columns(
            pl.lit(QUARANTINED).alias("in_set"),
            pl.lit(QUARANTINED_BY_MARGIN).alias("reason"),
            pl.when(low)
            .then(_closeness(min_confidence - conf, review.confidence_margin))
            .otherwise(_closeness(score - outlier_threshold, review.outlier_margin))
            .alias("score"),
            pl.when(low)
            .then(
                pl.format(
                    "quarantined: confidence {} < min {}", conf.round(3), pl.lit(min_confidence)
                )
            )
            .otherwise(
                pl.format(
                    "quarantined: outlier score {} > {}", score.round(2), pl.lit(outlier_threshold)
                )
            )
            .alias("detail"),
        )
        .select(_CANDIDATE)
    )


def _field_uploads(quarantined: pl.DataFrame) -> pl.DataFrame:
    if "field_tag" not in quarantined.columns:
        return pl.DataFrame(schema=dict.fromkeys(_CANDIDATE, pl.String))
    tag = pl.col("field_tag")
    return (
        quarantined.filter((pl.col("reason") == AWAITING_REVIEW) & tag.is_not_null())
        .with_columns(
            pl.lit(QUARANTINED).alias("in_set"),
            tag.replace_strict(FIELD_REASONS, default=FIELD_FALSE_WAKE).alias("reason"),
            pl.lit(1.0).alias("score"),
            pl.format("device upload tagged {}", tag).alias("detail"),
        )
        .select(_CANDIDATE)
    )


def _contradicted(
    validated: pl.DataFrame,
    predicted: pl.DataFrame,
    review: ReviewSettings,
    generated_sources: Iterable[str],
) -> list[pl.DataFrame]:
    joined = validated.join(predicted, on="clip_id", how="inner").filter(
        pl.col("predicted") != pl.col("label")
    )
    joined = joined.with_columns(
        pl.lit(VALIDATED).alias("in_set"),
        pl.col("probability").alias("score"),
        pl.format(
            "teacher says {} ({})", pl.col("predicted"), pl.col("probability").round(3)
        ).alias("detail"),
    )
    sure = joined.filter(pl.col("probability") >= review.disagreement_confidence).with_columns(
        pl.lit(TEACHER_DISAGREES).alias("reason")
    )
    real = joined.filter(
        ~pl.col("source").is_in(list(generated_sources)) & ~is_augmented()
    ).with_columns(pl.lit(REAL_MISCLASSIFIED).alias("reason"))
    return [sure.select(_CANDIDATE), real.select(_CANDIDATE)]


def _origins(validated: pl.DataFrame, quarantined: pl.DataFrame) -> pl.DataFrame:
    """What each clip was made from (``origin_id``: the TTS request with the text it spoke, or
    the corpus utterance it was cut from), so a reviewer reads what the clip should say beside
    what the model heard ("sees" rendered for a "cheese" model is a right ``_unknown_``)."""
    frames = [
        t.select("clip_id", pl.col("origin_id").cast(pl.String).alias("origin"))
        for t in (validated, quarantined)
        if "origin_id" in t.columns
    ]
    if not frames:
        return pl.DataFrame(schema={"clip_id": pl.String, "origin": pl.String})
    return pl.concat(frames).unique("clip_id", keep="first")


def rank_queue(
    validated: pl.DataFrame,
    quarantined: pl.DataFrame,
    review: ReviewSettings,
    *,
    min_confidence: float,
    outlier_threshold: float,
    predicted: pl.DataFrame | None = None,
    generated_sources: Iterable[str] = (),
) -> pl.DataFrame:
    """The review queue (:data:`QUEUE_COLUMNS`): at most ``review.queue_size`` clips, highest
    score first (ties by clip id), each once under its best reason.  ``predicted`` is the
    teacher's :func:`predictions` (None: no model-based reasons); ``generated_sources`` are the
    sources this pipeline generated itself (not "real" for :data:`REAL_MISCLASSIFIED`)."""
    version = data_version(validated, quarantined)
    open_validated = _unreviewed(validated)
    parts = [
        *_near_thresholds(open_validated, review, min_confidence, outlier_threshold),
        _quarantined_by_margin(_unreviewed(quarantined), review, min_confidence, outlier_threshold),
        _field_uploads(quarantined),
    ]
    if predicted is not None:
        parts += _contradicted(open_validated, predicted, review, generated_sources)
    candidates = pl.concat(
        [p.cast({"score": pl.Float64}) for p in parts], how="vertical_relaxed"
    ).sort(["score", "clip_id", "reason"], descending=[True, False, False])
    if candidates.is_empty():
        return pl.DataFrame(schema=QUEUE_COLUMNS)
    queue = (
        candidates.group_by("clip_id", maintain_order=True)
        .agg(pl.all().first(), pl.col("reason").unique(maintain_order=True).alias("reasons"))
        .with_columns(pl.col("reasons").list.join(","))
        .head(review.queue_size)
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("rank"),
            pl.lit(version).alias("data_version"),
        )
        .join(_origins(validated, quarantined), on="clip_id", how="left")
    )
    return queue.select(list(QUEUE_COLUMNS)).cast(QUEUE_COLUMNS)  # type: ignore[arg-type]


def clips_per_reason(queue: pl.DataFrame) -> pl.DataFrame:
    """How many queued clips each reason holds (``reason``, ``clips``), most first: what the
    asset's metadata and the demo's line say of the queue."""
    return (
        queue.group_by("reason")
        .agg(pl.len().cast(pl.Int64).alias("clips"))
        .sort(["clips", "reason"], descending=[True, False])
    )
