"""The Dagster layer: thin assets over ``kws_assets.core``, resources chosen from the config."""

from __future__ import annotations

import os

import dagster as dg

from kws_assets.config import KwsConfig, config_path, load_config
from kws_assets.defs.assets import curate, features, ingest, ship, train
from kws_assets.defs.checks import ALL_CHECKS
from kws_assets.defs.io_managers import PolarsParquetIOManager, TorchCheckpointIOManager
from kws_assets.defs.resources import ClipStoreResource, KwsSettings

PIPELINE_JOB = "kws_pipeline"


def build_definitions(config_file: str | os.PathLike[str] | None = None) -> dg.Definitions:
    """All assets, checks, jobs and resources, with storage rooted where the config says."""
    if config_file is None:
        config_file = config_path()
    cfg: KwsConfig = load_config(config_file)
    assets = dg.load_assets_from_modules([ingest, curate, features, train, ship])
    return dg.Definitions(
        assets=assets,
        asset_checks=ALL_CHECKS,
        jobs=[dg.define_asset_job(PIPELINE_JOB, selection=dg.AssetSelection.all(),
                                  description="Materialize the whole graph, corpus to int8 artifact.")],
        resources={
            "settings": KwsSettings(config_path=str(config_file) if config_file else ""),
            "clip_store": ClipStoreResource(root=str(cfg.storage_path("clips"))),
            "io_manager": PolarsParquetIOManager(base_path=str(cfg.storage_path("tables"))),
            "model_io_manager": TorchCheckpointIOManager(base_path=str(cfg.storage_path("models"))),
        },
    )
