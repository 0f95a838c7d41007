"""Curate: quality gate, quarantine (dead-letter table with reasons) and speaker-disjoint splits."""

from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl

from kws_assets.config import curation_settings
from kws_assets.core.dataset import curation, synthesis
from kws_assets.core.parallel import resolve_workers
from kws_assets.core.review.apply import apply_decisions
from kws_assets.core.review.decisions import read_decisions
from kws_assets.lib.metadata import label_counts_table, metadata_table
from kws_assets.lib.partitions import all_partitions_of, loaded_partitions, missing_partitions
from kws_assets.lib.resources import ClipStoreResource, KwsSettings
from kws_assets.settings import UNKNOWN_LABEL

GROUP = "curate"


@dg.multi_asset(
    group_name=GROUP,
    # Fan-in: every keyword partition and every corpus batch becomes one dataset.
    ins={
        "synthetic_clips": all_partitions_of(),
        "aligned_keywords": all_partitions_of(),
        "unknown_clips": all_partitions_of(),
    },
    outs={
        "validated_set": dg.AssetOut(
            automation_condition=dg.AutomationCondition.eager(),
            kinds={"pandera", "parquet"},
            code_version="3",
            owners=["team:kws-data"],
            description="Every clip that passed the quality gate and the clip-table schema, with "
            "its quality metrics and a speaker-disjoint train/val/test split. "
            "Includes _silence_ examples made of noise. Honours the review_decisions "
            "people recorded with `kws review` (relabel, reject, keep). Reads every keyword "
            "partition and every corpus batch; eager: rebuilt when any of them changes.",
        ),
        "quarantined_clips": dg.AssetOut(
            automation_condition=dg.AutomationCondition.eager(),
            kinds={"parquet"},
            code_version="3",
            owners=["team:kws-data"],
            description="Dead-letter table: every corpus entry, recording or clip that did not "
            "make it (stages ingest, alignment, clip, synthesis, quality, outlier, "
            "schema), each with a reason code, the measurements behind it and its "
            "provenance. Re-materialize after changing thresholds to re-validate.",
        ),
    },
)
def validated_set(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    synthetic_clips: Any,
    aligned_keywords: Any,
    unknown_clips: Any,
) -> Iterator[dg.Output[pl.DataFrame]]:
    cfg = settings.config
    store = clip_store.store
    per_keyword = {
        name: keyword_tables(context, name, value, cfg.keywords)
        for name, value in (
            ("synthetic_clips", synthetic_clips),
            ("aligned_keywords", aligned_keywords),
        )
    }
    batches = loaded_partitions(context, "unknown_clips", unknown_clips)
    not_ingested = missing_partitions(context, "unknown_clips", batches)
    if not_ingested:
        context.log.warning(f"corpus batches not ingested yet, left out: {not_ingested}")
    unknown = pl.concat(
        [t for _, t in sorted(batches.items())] or [curation.empty_clip_table()],
        how="diagonal_relaxed",
    )
    # A batch ingested before a keyword was added may still hold that word as _unknown_.
    stale_unknown = (pl.col("label") == UNKNOWN_LABEL) & pl.col("word").is_in(cfg.keywords)
    if "field_tag" in unknown.columns:  # a false wake whose transcript is the keyword is not stale
        stale_unknown &= pl.col("field_tag").is_null()
    stale = unknown.filter(stale_unknown).height if "word" in unknown.columns else 0
    if stale:
        unknown = unknown.filter(~stale_unknown.fill_null(False))
    silence_rows, _ = synthesis.render_to_store(
        synthesis.silence_recipes(cfg.noise, salt=cfg.section_hash("audio")),
        cfg.audio,
        store,
        cfg.language,
    )
    candidates = pl.concat(
        [
            *per_keyword["synthetic_clips"],
            *per_keyword["aligned_keywords"],
            unknown,
            curation.clip_table(silence_rows),
        ],
        how="diagonal_relaxed",
    )
    # What reviewers decided (kws review) applies before the gates, so it meets the same checks.
    decisions = apply_decisions(candidates, read_decisions(store.objects))
    if decisions.stale:
        context.log.info(f"{decisions.stale} review decision(s) about clips no longer candidates")
    result = curation.curate(
        decisions.candidates,
        curation_settings(cfg),
        lambda uri: store.read(uri),
        workers=resolve_workers(cfg.compute.workers),
    )
    validated, quarantined = result.validated, result.quarantined
    per_split = (
        validated.group_by("split")
        .agg(pl.len().alias("clips"), pl.col("speaker").n_unique().alias("speakers"))
        .sort("split")
    )
    yield dg.Output(
        validated,
        output_name="validated_set",
        metadata={
            "clips": validated.height,
            "candidates": candidates.height,
            "keywords": len(cfg.keywords),
            "corpus_batches": len(batches),
            "stale_unknown_clips_dropped": stale,
            "review_decisions_applied": decisions.applied,
            "review_decisions_stale": decisions.stale,
            "quarantined": quarantined.height,
            "per_label_and_split": label_counts_table(validated, by="split"),
            "per_split": metadata_table(per_split),
            "sample_clips": dg.MetadataValue.json(validated["uri"].head(5).to_list()),
        },
    )
    yield dg.Output(
        quarantined,
        output_name="quarantined_clips",
        metadata={
            "quarantined": quarantined.height,
            "by_reason": dg.MetadataValue.json(result.reason_counts()),
            "by_stage_and_reason": metadata_table(curation.reason_table(quarantined)),
            "thresholds": dg.MetadataValue.json(
                {"quality": cfg.quality.model_dump(), "outliers": cfg.outliers.model_dump()}
            ),
        },
    )


def keyword_tables(
    context: dg.AssetExecutionContext, input_name: str, value: Any, keywords: list[str]
) -> list[pl.DataFrame]:
    """The configured keywords' partitions of a per-keyword input, in keyword order.

    A configured keyword without a materialized partition fails the step (the model's labels
    would have no clips); partitions of keywords no longer configured are left out.
    """
    tables = loaded_partitions(context, input_name, value)
    missing = [k for k in keywords if k not in tables]
    if missing:
        raise dg.Failure(
            f"{input_name}: keyword partitions {missing} are not materialized; "
            f"materialize them first (e.g. a backfill of the keyword_clips job)",
            allow_retries=False,
        )
    extra = sorted(set(tables) - set(keywords))
    if extra:
        context.log.warning(
            f"{input_name}: partitions {extra} are not configured keywords; left out"
        )
    return [tables[k] for k in keywords]
