"""Features: one table per model family — MFCC for the DS-CNN, the speech embedding for the
embedding head — computed with the same front-end code the shipped artifact runs."""

import dagster as dg
import polars as pl

from kws_assets.core.features.embedding_table import embedding_cache, stage_embedding_table
from kws_assets.core.features.mfcc import FeatureSpec, default_workers
from kws_assets.core.features.speech_embedding import EmbeddingSpec, SpeechEmbeddingFrontEnd
from kws_assets.core.features.table import (
    ClipReader,
    FeatureCache,
    MfccTableStats,
    local_file_stamp,
    stage_mfcc_table,
)
from kws_assets.core.storage.parquet_stream import StagedParquet, sweep_stale_staged
from kws_assets.lib.resources import ClipStoreResource, KwsSettings
from kws_assets.settings import KwsConfig

# Under storage.root (always local): the feature cache, and where the table is built before the
# IO manager moves it into place.
FEATURE_CACHE_DIR = ("cache", "features")
STAGING_DIR = ("cache", "staging")


def stage_features(
    cfg: KwsConfig, clip_store: ClipStoreResource, clips: pl.DataFrame, cache_name: str = "mfcc"
) -> tuple[StagedParquet, MfccTableStats]:
    """MFCCs of ``clips`` as a staged Parquet file, through the feature cache: the one feature
    path of every asset that needs features (a clip featurized once is read from the cache)."""
    spec = FeatureSpec.from_settings(cfg.features, cfg.audio)
    staging = cfg.storage_path(*STAGING_DIR)
    sweep_stale_staged(staging)
    return stage_mfcc_table(
        clips,
        spec,
        staging,
        ClipReader(load_bytes=clip_store.store.read_bytes, stamp=local_file_stamp),
        cache=FeatureCache.for_spec(cfg.storage_path(*FEATURE_CACHE_DIR), spec, name=cache_name),
    )


@dg.asset(
    group_name="features",
    kinds={"torchaudio", "parquet"},
    code_version="2",
    owners=["team:kws-ml"],
    description="MFCC of every validated clip (torchaudio, MLPerf Tiny convention: 40 ms window, "
    "20 ms hop, 40 mel bands, 10 coefficients) as a fixed-shape array column, with "
    "clip id, label and split. Built batch by batch on all cores and written as "
    "Parquet row groups as it goes; clips unchanged since the last build come from "
    "the feature cache under storage.root/cache/features.",
)
def mfcc_table(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    validated_set: pl.DataFrame,
    augmented_clips: pl.DataFrame,
) -> StagedParquet:
    cfg = settings.config
    spec = FeatureSpec.from_settings(cfg.features, cfg.audio)
    staged, stats = stage_features(
        cfg,
        clip_store,
        pl.concat([validated_set, augmented_clips], how="diagonal_relaxed"),
        cache_name=f"mfcc-{context.partition_key}" if context.has_partition_key else "mfcc",
    )
    context.add_output_metadata(
        {
            "rows": stats.rows,
            "featurized": stats.featurized,
            "from_cache": stats.from_cache,
            "clips_per_s": round(stats.clips_per_s, 1),
            "threads": stats.workers,
            "row_groups": stats.row_groups,
            "feature_shape": f"{spec.n_frames}x{spec.n_mfcc}",
            "all_finite": stats.all_finite,
            "feature_config": dg.MetadataValue.json(spec.model_dump(mode="json")),
        }
    )
    return staged  # the IO manager moves the finished Parquet file into place


def embedding_front_end(cfg: KwsConfig) -> SpeechEmbeddingFrontEnd:
    """The speech_embedding front end the config asks for (the same one the artifact ships)."""
    spec = EmbeddingSpec(
        sample_rate=cfg.audio.sample_rate,
        clip_samples=cfg.audio.clip_samples,
        context_seconds=cfg.embedding.context_seconds,
    )
    return SpeechEmbeddingFrontEnd(
        spec, threads=cfg.embedding.threads, batch_clips=cfg.embedding.batch_clips
    )


@dg.asset(
    group_name="features",
    kinds={"onnx", "parquet"},
    code_version="1",
    owners=["team:kws-ml"],
    description="The speech_embedding front end (openWakeWord's melspectrogram + Google's "
    "speech_embedding ONNX graphs, sha256-checked) over every validated and augmented "
    "clip, padded to embedding.context_seconds: a fixed-shape [frames x 96] array "
    "column, computed batched through onnxruntime, unchanged clips from the feature "
    "cache. The same front end runs inside the shipped artifact.",
)
def embedding_table(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    validated_set: pl.DataFrame,
    augmented_clips: pl.DataFrame,
) -> StagedParquet:
    cfg = settings.config
    front_end = embedding_front_end(cfg)
    staging = cfg.storage_path(*STAGING_DIR)
    sweep_stale_staged(staging)
    clips = pl.concat([validated_set, augmented_clips], how="diagonal_relaxed")
    staged, stats = stage_embedding_table(
        clips,
        front_end,
        staging,
        ClipReader(load_bytes=clip_store.store.read_bytes, stamp=local_file_stamp),
        cache=embedding_cache(cfg.storage_path(*FEATURE_CACHE_DIR), front_end.spec),
        workers=default_workers(),
    )
    context.add_output_metadata(
        {
            "rows": stats.rows,
            "featurized": stats.featurized,
            "from_cache": stats.from_cache,
            "clips_per_s": round(stats.clips_per_s, 1),
            "row_groups": stats.row_groups,
            "embedding_shape": f"{front_end.spec.n_frames}x{front_end.spec.dim}",
            "all_finite": stats.all_finite,
            "front_end": dg.MetadataValue.json(front_end.spec.to_dict()),
        }
    )
    return staged
