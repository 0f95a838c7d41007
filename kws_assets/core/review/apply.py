"""Honouring reviewers' decisions in the next curation, and counting them for the data card.

``validated_set`` calls :func:`apply_decisions` on its candidate clips before curating them, so a
decision flows through the same gates as everything else and the result is a function of the
candidates and the decisions table alone (re-running gives the same tables):

* **relabel** — the clip's label becomes the reviewer's; the old one is kept in
  ``label_before_review``;
* **reject** — the clip becomes a dead letter of stage ``review`` with reason
  :data:`REVIEW_REJECTED` (curation moves it to ``quarantined_clips`` like any upstream reject);
* **keep** — the clip is marked reviewed.

Field uploads (a ``field_tag``: audio a device saved around a false or missed wake) train nothing
until a person confirmed them: without a decision they are dead letters of stage ``review`` with
reason :data:`AWAITING_REVIEW`, which the review queue puts first; kept, a false wake is a hard
``_unknown_`` negative and a missed wake a keyword positive of the validated set (and the retrain
sensor sees a new validated set).

A person who heard the clip outranks the automated soft gates: a kept or relabelled clip is not
quarantined for low alignment confidence or as an outlier (:func:`human_confirmed`); the hard
gates (unreadable audio, wrong format, schema) still apply.  Decisions about clips that are no
longer candidates are counted as ``stale`` and otherwise ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from kws_assets.core.review.decisions import KEEP, REJECT, RELABEL, latest_decisions
from kws_assets.core.tables import REVIEW_COLUMNS

STAGE_REVIEW = "review"
REVIEW_REJECTED = "review_rejected"
AWAITING_REVIEW = "awaiting_review"
REVIEW_SUMMARY_COLUMNS: dict[str, type[pl.DataType]] = {
    "review_reason": pl.String,
    "reviewed": pl.UInt32,
    "kept": pl.UInt32,
    "relabelled": pl.UInt32,
    "rejected": pl.UInt32,
}


@dataclass(frozen=True)
class AppliedDecisions:
    """The candidates after the decisions, and how many decisions applied or were stale."""

    candidates: pl.DataFrame
    applied: int
    stale: int


def human_confirmed(row: dict) -> bool:
    """Whether a person kept or relabelled this clip (so the soft gates do not overrule them)."""
    return row.get("review") in (KEEP, RELABEL)


def apply_decisions(candidates: pl.DataFrame, decisions: pl.DataFrame) -> AppliedDecisions:
    """The candidate clips with the latest decision per clip applied (module docstring).  The
    candidates gain the :data:`~kws_assets.core.tables.REVIEW_COLUMNS` (null where undecided)."""
    table = candidates.with_columns(
        [
            pl.lit(None, dtype=t).alias(c)
            for c, t in REVIEW_COLUMNS.items()
            if c not in candidates.columns
        ]
    )
    for column in ("reject_stage", "reject_reason", "reject_detail", "field_tag"):
        if column not in table.columns:
            table = table.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    latest = latest_decisions(decisions)
    if latest.is_empty():
        return AppliedDecisions(_hold_unreviewed_field_clips(table), 0, 0)
    ids = set(table["clip_id"].to_list())
    live = latest.filter(pl.col("clip_id").is_in(list(ids)))
    stale = latest.height - live.height
    d = live.select(
        "clip_id",
        pl.col("action").alias("_action"),
        pl.col("new_label").alias("_new_label"),
        pl.col("reason").alias("_reason"),
        pl.format("rejected by {} at {} (queued: {})", "reviewer", "time", "reason").alias("_why"),
    )
    # An upstream dead letter stays one: a person cannot keep audio that was never cut.
    decided = pl.col("_action").is_not_null() & pl.col("reject_reason").is_null()
    rejected = decided & (pl.col("_action") == REJECT)
    relabelled = decided & (pl.col("_action") == RELABEL)
    table = (
        table.join(d, on="clip_id", how="left")
        .with_columns(
            pl.when(decided).then(pl.col("_action")).otherwise(pl.col("review")).alias("review"),
            pl.when(decided)
            .then(pl.col("_reason"))
            .otherwise(pl.col("review_reason"))
            .alias("review_reason"),
            pl.when(decided)
            .then(pl.col("label"))
            .otherwise(pl.col("label_before_review"))
            .alias("label_before_review"),
            pl.when(relabelled)
            .then(pl.col("_new_label"))
            .otherwise(pl.col("label"))
            .alias("label"),
            pl.when(rejected)
            .then(pl.lit(STAGE_REVIEW))
            .otherwise(pl.col("reject_stage"))
            .alias("reject_stage"),
            pl.when(rejected)
            .then(pl.lit(REVIEW_REJECTED))
            .otherwise(pl.col("reject_reason"))
            .alias("reject_reason"),
            pl.when(rejected)
            .then(pl.col("_why"))
            .otherwise(pl.col("reject_detail"))
            .alias("reject_detail"),
        )
        .drop("_action", "_new_label", "_reason", "_why")
    )
    return AppliedDecisions(_hold_unreviewed_field_clips(table), live.height, stale)


def _hold_unreviewed_field_clips(table: pl.DataFrame) -> pl.DataFrame:
    """Field uploads nobody has confirmed yet become dead letters awaiting review."""
    waiting = (
        pl.col("field_tag").is_not_null()
        & pl.col("review").is_null()
        & pl.col("reject_reason").is_null()
    )
    return table.with_columns(
        pl.when(waiting)
        .then(pl.lit(STAGE_REVIEW))
        .otherwise(pl.col("reject_stage"))
        .alias("reject_stage"),
        pl.when(waiting)
        .then(pl.lit(AWAITING_REVIEW))
        .otherwise(pl.col("reject_reason"))
        .alias("reject_reason"),
        pl.when(waiting)
        .then(pl.format("a device's {} upload: waits for a person (kws review)", "field_tag"))
        .otherwise(pl.col("reject_detail"))
        .alias("reject_detail"),
    )


def review_summary(validated: pl.DataFrame, quarantined: pl.DataFrame) -> pl.DataFrame:
    """Reviewed clips per queue reason: how many were kept, relabelled and rejected
    (:data:`REVIEW_SUMMARY_COLUMNS`; empty when nobody reviewed anything)."""
    rows = pl.concat(
        [
            t.select("review", "review_reason")
            for t in (validated, quarantined)
            if "review" in t.columns
        ]
        or [pl.DataFrame(schema={"review": pl.String, "review_reason": pl.String})],
        how="vertical_relaxed",
    ).filter(pl.col("review").is_not_null())
    if rows.is_empty():
        return pl.DataFrame(schema=REVIEW_SUMMARY_COLUMNS)
    action = pl.col("review")
    return (
        rows.group_by(pl.col("review_reason").fill_null("unknown"))
        .agg(
            pl.len().alias("reviewed"),
            (action == KEEP).sum().alias("kept"),
            (action == RELABEL).sum().alias("relabelled"),
            (action == REJECT).sum().alias("rejected"),
        )
        .sort(["reviewed", "review_reason"], descending=[True, False])
        .cast(REVIEW_SUMMARY_COLUMNS)  # type: ignore[arg-type]
    )
