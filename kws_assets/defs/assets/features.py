"""Features: the MFCC table every model is trained on (same feature code as inference)."""


import dagster as dg
import numpy as np
import polars as pl

from kws_assets.core.feature_table import build_mfcc_table
from kws_assets.core.features import FeatureSpec
from kws_assets.defs.resources import ClipStoreResource, KwsSettings


@dg.asset(
    group_name="features",
    kinds={"torchaudio", "parquet"},
    code_version="1",
    owners=["team:kws-ml"],
    description="MFCC of every validated clip (torchaudio, MLPerf Tiny convention: 40 ms window, "
                "20 ms hop, 40 mel bands, 10 coefficients) as a fixed-shape array column, with "
                "clip id, label and split.",
)
def mfcc_table(context: dg.AssetExecutionContext, settings: KwsSettings,
               clip_store: ClipStoreResource, validated_set: pl.DataFrame) -> pl.DataFrame:
    cfg = settings.config
    spec = FeatureSpec.from_settings(cfg.features, cfg.audio)
    store = clip_store.store
    table = build_mfcc_table(validated_set, spec,
                             lambda uri: store.read(uri, target_sr=spec.sample_rate))
    values = table["mfcc"].to_numpy() if table.height else np.zeros((0, *spec.shape))
    context.add_output_metadata({
        "rows": table.height,
        "feature_shape": f"{spec.n_frames}x{spec.n_mfcc}",
        "all_finite": bool(np.isfinite(values).all()),
        "feature_config": dg.MetadataValue.json(spec.model_dump(mode="json")),
    })
    return table
