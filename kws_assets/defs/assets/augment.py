"""Augment: noisy, reverberant, band-limited copies of the validated training clips."""

import dagster as dg
import polars as pl

from kws_assets.core.dataset import augment
from kws_assets.core.parallel import progress_reporter, resolve_workers
from kws_assets.lib.metadata import label_counts_table
from kws_assets.lib.resources import ClipStoreResource, KwsSettings

MAX_LISTED = 50


@dg.asset(
    group_name="features",  # what the feature tables read
    kinds={"torchaudio", "parquet"},
    code_version="1",
    owners=["team:kws-data"],
    description="Augmented copies of the validated clips of the configured splits (train by "
    "default): background noise at an SNR range (coloured noise, babble of "
    "same-split non-keyword speech, the user's noise folder), synthetic room "
    "impulse responses, time shift, gain, speed and pitch changes, telephone band "
    "and 8 kHz round trips. Each row points at its source clip (origin_id) and "
    "carries the parameters drawn (augment_params, JSON).",
)
def augmented_clips(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    validated_set: pl.DataFrame,
) -> pl.DataFrame:
    cfg = settings.config
    store = clip_store.store
    folder = (
        augment.NoiseFolder.scan(cfg.augment.noise_folder, cfg.audio.sample_rate)
        if cfg.augment.noise_folder
        else None
    )
    workers = resolve_workers(cfg.compute.workers)
    rows, failures = augment.augment_clips(
        validated_set,
        cfg.augment,
        cfg.audio,
        store,
        lambda uri: store.read(uri, target_sr=cfg.audio.sample_rate),
        folder,
        workers=workers,
        batch_size=cfg.compute.batch_clips,
        progress=progress_reporter(context.log.info, "source clips augmented"),
    )
    table = augment.augmented_table(rows)
    if failures:
        context.log.warning(f"{len(failures)} clips could not be augmented; see metadata")
    context.add_output_metadata(
        {
            "clips": table.height,
            "source_clips": table["origin_id"].n_unique() if table.height else 0,
            "per_label": label_counts_table(table),
            "transforms_applied": dg.MetadataValue.json(augment.transform_counts(table)),
            "noise_folder_files": len(folder.files) if folder else 0,
            "unusable_noise_files": dg.MetadataValue.json(folder.problems if folder else {}),
            "failures": len(failures),
            "workers": workers,
            "failed_clips": dg.MetadataValue.json([f.__dict__ for f in failures[:MAX_LISTED]]),
            "sample_params": dg.MetadataValue.json(table["augment_params"].head(3).to_list()),
        }
    )
    return table
