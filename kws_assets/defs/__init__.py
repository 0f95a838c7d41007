"""The Dagster layer: thin assets over ``kws_assets.core``, resources chosen from the config."""

from __future__ import annotations

import os

import dagster as dg

from kws_assets.config import load_config
from kws_assets.settings import KwsConfig, config_path
from kws_assets.defs.assets import augment, curate, data_card, evaluate, features, ingest, ship, train
from kws_assets.defs.checks import ALL_CHECKS
from kws_assets.defs.jobs import JOBS, PIPELINE_JOB, SCHEDULES
from kws_assets.defs.resources import KwsSettings, storage_resources
from kws_assets.defs.sensors import build_sensors

__all__ = ["PIPELINE_JOB", "build_definitions"]


def build_definitions(config_file: str | os.PathLike[str] | None = None,
                      executor: dg.ExecutorDefinition | None = None) -> dg.Definitions:
    """All assets, checks, jobs and resources, with storage rooted where the config says.

    ``executor`` replaces the default in-process executor, e.g. ``dagster_k8s.k8s_job_executor``
    or ``dagster_celery.celery_executor`` with ``storage.deployment: s3`` (README, "Scaling out").
    """
    if config_file is None:
        config_file = config_path()
    cfg: KwsConfig = load_config(config_file)
    assets = dg.load_assets_from_modules([ingest, curate, data_card, augment, features, train,
                                          ship, evaluate])
    return dg.Definitions(
        assets=assets,
        asset_checks=ALL_CHECKS,
        # Partitioned by keyword / corpus batch upstream, fan-in downstream: see defs/partitions.py;
        # jobs and the nightly schedule: defs/jobs.py; sensors: defs/sensors.py.
        jobs=JOBS,
        schedules=SCHEDULES,
        sensors=build_sensors(cfg),
        # One process per run: a step subprocess would re-import torch & co. for seconds of work;
        # parallelism comes from runs (one per partition), not from steps.
        executor=executor or dg.in_process_executor,
        resources={
            "settings": KwsSettings(config_path=str(config_file) if config_file else ""),
            # clip_store, io_manager, model_io_manager (+ s3): local or S3 per storage.deployment
            **storage_resources(cfg),
        },
    )
