"""The data card: what the dataset is, rendered from its tables, shown in the UI and kept as a
file."""

from typing import Any

import dagster as dg
import polars as pl

from kws_assets.config import card_settings
from kws_assets.core.corpus.ingest import CORPUS_SCHEMA
from kws_assets.core.dataset import data_card as card
from kws_assets.core.dataset.domain_gap import synthetic_real_gap
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.lib.family_assets import stage_features
from kws_assets.lib.partitions import all_partitions_of, loaded_partitions
from kws_assets.lib.resources import ClipStoreResource, KwsSettings
from kws_assets.settings import KwsConfig

CARD_FEATURE_CACHE = "data-card-mfcc"
DESCRIBED_ASSETS = ("raw_corpus", "validated_set", "quarantined_clips")


def _corpus_of_every_batch(context: dg.AssetExecutionContext, raw_corpus: Any) -> pl.DataFrame:
    tables = [t for _, t in sorted(loaded_partitions(context, "raw_corpus", raw_corpus).items())]
    return (
        pl.concat(tables, how="diagonal_relaxed") if tables else pl.DataFrame(schema=CORPUS_SCHEMA)
    )


def _latest_data_versions(context: dg.AssetExecutionContext) -> dict[str, str]:
    versions = {}
    for name in DESCRIBED_ASSETS:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(name))
        materialization = event.asset_materialization if event else None
        version = (
            (materialization.tags or {}).get("dagster/data_version") if materialization else None
        )
        versions[name] = version or "unknown"
    return versions


def _synthetic_real_gap(
    cfg: KwsConfig, clip_store: ClipStoreResource, validated: pl.DataFrame
) -> pl.DataFrame:
    """Per keyword, how far its synthetic clips are from its recorded ones in MFCC space, with
    the feature code of mfcc_table (its own cache file: a cache holds exactly the clips of the
    last build that used it, and this build holds only the keyword clips)."""
    keyword_clips = validated.filter(pl.col("label").is_in(cfg.keywords))
    staged, _ = stage_features(cfg, clip_store, keyword_clips, cache_name=CARD_FEATURE_CACHE)
    try:
        features = staged.read()
    finally:
        staged.discard()
    return synthetic_real_gap(features, cfg.keywords)


@dg.asset(
    group_name="curate",
    kinds={"markdown"},
    io_manager_key="artifact_io_manager",
    code_version="1",
    owners=["team:kws-data"],
    ins={"raw_corpus": all_partitions_of()},
    description="Data card (Markdown): composition per source, keyword and split, speaker counts, "
    "quality distributions, quarantine reasons, provenance and licenses, known "
    "limitations, and the versions of code and data it describes. Stored as a folder "
    "holding DATA_CARD.md beside the tables (local folder or S3).",
)
def data_card(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    raw_corpus: Any,
    validated_set: pl.DataFrame,
    quarantined_clips: pl.DataFrame,
) -> dg.Output[ArtifactFolder]:
    cfg = settings.config
    validated, quarantined = validated_set, quarantined_clips
    corpus = _corpus_of_every_batch(context, raw_corpus)
    config_hash = cfg.section_hash(*card.CARD_CONFIG_SECTIONS)
    versions = card.code_versions(config_hash, _latest_data_versions(context))
    gap = _synthetic_real_gap(cfg, clip_store, validated)
    text = card.render_data_card(
        validated, quarantined, corpus, card_settings(cfg), versions, synthetic_real=gap
    )
    folder = ArtifactFolder.staging(prefix="kws-data-card-")
    card.write_card(folder.file(card.CARD_FILE), text)
    return dg.Output(
        folder,
        metadata={
            "card": dg.MetadataValue.md(text),
            "clips": validated.height,
            "quarantined": quarantined.height,
            "speakers": validated["speaker"].n_unique() if validated.height else 0,
            "git_commit": versions.git_commit or "unknown",
        },
    )
