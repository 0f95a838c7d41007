"""Negatives: hours of keyword-free audio heard as a detector hears it, and each family's view of
it (its front end over the whole recordings), which the family's training draws windows from and
mines its own false accepts in."""

import dagster as dg
import polars as pl

from kws_assets.core.dataset import negative_material as material
from kws_assets.core.families import families
from kws_assets.core.parallel import progress_reporter, resolve_workers
from kws_assets.core.tables import HELDOUT, TRAIN
from kws_assets.lib.family_assets import negatives_asset
from kws_assets.lib.resources import ClipStoreResource, KwsSettings

MAX_LISTED = 50


@dg.asset(
    group_name="features",
    kinds={"parquet"},
    code_version="1",
    owners=["team:kws-data"],
    description="Hours of keyword-free audio (negative_material.hours, plus heldout_hours never "
    "trained on) as long recordings: running speech by the train split's voices of every "
    "engine (held-out: the validation split's voices), speech by voices of other languages, "
    "music-like tones, noise and babble, with cut-off keyword fragments inside the speech. "
    "Stored as audio files (one per segment_seconds, keyed by a digest of what it is made "
    "of, so a re-run renders only what changed); one row per recording.",
)
def negative_material(
    context: dg.AssetExecutionContext,
    settings: KwsSettings,
    clip_store: ClipStoreResource,
    validated_set: pl.DataFrame,
) -> pl.DataFrame:
    cfg = settings.config
    store = clip_store.store
    built = material.build_material(
        cfg.negative_material,
        cfg.audio,
        cfg.negatives,
        cfg.keywords,
        cfg.language,
        validated_set,
        store,
        lambda uri: store.read(uri, target_sr=cfg.audio.sample_rate).samples,
        workers=resolve_workers(cfg.compute.workers),
        progress=progress_reporter(context.log.info, "negative segments rendered"),
    )
    for note in built.notes:
        context.log.info(note)
    if built.failures:
        context.log.warning(f"{len(built.failures)} segments could not be rendered; see metadata")
    table = built.table
    hours = {
        split: round(float(table.filter(pl.col("split") == split)["seconds"].sum()) / 3600, 3)
        for split in (TRAIN, HELDOUT)
    }
    context.add_output_metadata(
        {
            "segments": table.height,
            "hours": dg.MetadataValue.json(hours),
            "per_kind": dg.MetadataValue.json(
                dict(table.group_by("kind").len().sort("kind").iter_rows()) if table.height else {}
            ),
            "voices": dg.MetadataValue.json(built.voices),
            "failures": len(built.failures),
            "failed_segments": dg.MetadataValue.json(
                [f.__dict__ for f in built.failures[:MAX_LISTED]]
            ),
        }
    )
    return table


negative_tables = [negatives_asset(family) for family in families() if family.negatives]
