"""Review: the clips a person should hear before the next curation, ranked (``kws review``
serves them; the decisions come back through ``validated_set``)."""

from typing import Any

import dagster as dg
import polars as pl

from kws_assets.core.dataset.curation import GENERATED_LICENSES
from kws_assets.core.families import families, get_family
from kws_assets.core.families.base import Family
from kws_assets.core.features.loader import table_logits
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.review import queue as review
from kws_assets.lib.metadata import metadata_table
from kws_assets.lib.resources import KwsSettings

GROUP = "review"


def teacher_family() -> Family:
    """The family the others learn from (their ``distil_from``): the model whose top-1 the
    queue holds the labels against; the first registered family when none is a teacher."""
    teachers = {f.distil_from for f in families() if f.distil_from}
    return get_family(sorted(teachers)[0]) if teachers else families()[0]


TEACHER = teacher_family()


@dg.asset(
    group_name=GROUP,
    kinds={"parquet"},
    code_version="1",
    owners=["team:kws-data"],
    ins={
        TEACHER.model.key: dg.AssetIn(dagster_type=ModelCheckpoint),
        TEACHER.table.key: dg.AssetIn(dagster_type=pl.LazyFrame),
    },
    description="The clips the pipeline is least sure of, ranked for a person's ear (reason and "
    "score each): alignment confidence or outlier score near its threshold, quarantined by a "
    f"small margin, the teacher ({TEACHER.model.key}) contradicting the label, real clips it "
    "gets wrong. At most review.queue_size rows. `kws review` serves it; the decisions are "
    "honoured by validated_set's next run.",
)
def review_queue(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    validated_set: pl.DataFrame,
    quarantined_clips: pl.DataFrame,
    **inputs: Any,
) -> dg.Output[pl.DataFrame]:
    cfg = settings.config
    teacher: ModelCheckpoint = inputs[TEACHER.model.key]
    predicted = None
    if teacher.labels == cfg.labels:
        ids, logits = table_logits(
            TEACHER.network(teacher), inputs[TEACHER.table.key], column=TEACHER.column
        )
        predicted = review.predictions(ids, logits, cfg.labels)
    else:
        context.log.warning(f"{TEACHER.model.key} has other labels: no teacher-based reasons")
    queue = review.rank_queue(
        validated_set,
        quarantined_clips,
        cfg.review,
        min_confidence=cfg.alignment.min_confidence,
        outlier_threshold=cfg.outliers.threshold,
        predicted=predicted,
        generated_sources=GENERATED_LICENSES,
    )
    by_reason = review.clips_per_reason(queue)
    return dg.Output(
        queue,
        metadata={
            "clips": queue.height,
            "data_version": str(queue["data_version"].first()) if queue.height else "empty",
            "by_reason": metadata_table(by_reason),
            "top": metadata_table(
                queue.head(10).select("rank", "clip_id", "label", "reason", "score")
            ),
        },
    )
