"""Curate: quality gate, quarantine (dead-letter table with reasons) and speaker-disjoint splits."""


import dagster as dg
import polars as pl

from kws_assets.core import curation, synthesis
from kws_assets.defs.assets.summaries import label_counts_md, md_table
from kws_assets.defs.resources import ClipStoreResource, KwsSettings

GROUP = "curate"


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "validated_set": dg.AssetOut(
            kinds={"pandera", "parquet"}, code_version="1", owners=["team:kws-data"],
            description="Every clip that passed the quality gate and the clip-table schema, with "
                        "its quality metrics and a speaker-disjoint train/val/test split. "
                        "Includes _silence_ examples made of noise."),
        "quarantined_clips": dg.AssetOut(
            kinds={"parquet"}, code_version="1", owners=["team:kws-data"],
            description="Dead-letter table: clips rejected by the quality gate or the schema, "
                        "each with a reason code and the measurements behind it."),
    },
)
def validated_set(context: dg.AssetExecutionContext, settings: KwsSettings,
                  clip_store: ClipStoreResource, synthetic_clips: pl.DataFrame,
                  aligned_keywords: pl.DataFrame):
    cfg = settings.config
    store = clip_store.store
    silence_rows, _ = synthesis.render_to_store(
        synthesis.silence_recipes(cfg.noise, salt=cfg.section_hash("audio")), cfg.audio, store,
        cfg.language)
    candidates = pl.concat(
        [synthetic_clips, aligned_keywords, curation.clip_table(silence_rows)], how="diagonal_relaxed")
    result = curation.curate(candidates, cfg, lambda uri: store.read(uri))
    validated, quarantined = result.validated, result.quarantined
    per_split = validated.group_by("split").agg(
        pl.len().alias("clips"), pl.col("speaker").n_unique().alias("speakers")).sort("split")
    yield dg.Output(validated, output_name="validated_set", metadata={
        "clips": validated.height,
        "candidates": candidates.height,
        "quarantined": quarantined.height,
        "per_label_and_split": dg.MetadataValue.md(label_counts_md(validated, by="split")),
        "per_split": dg.MetadataValue.md(md_table(per_split)),
        "sample_clips": dg.MetadataValue.json(validated["uri"].head(5).to_list()),
    })
    yield dg.Output(quarantined, output_name="quarantined_clips", metadata={
        "quarantined": quarantined.height,
        "by_reason": dg.MetadataValue.json(result.reason_counts()),
    })
