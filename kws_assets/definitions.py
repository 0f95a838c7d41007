"""Code location entry point: ``workspace.yaml``, ``dg list defs`` / ``dg check defs`` and
``dg dev`` load :func:`defs` from here.

Assets, checks, jobs and schedules come from the ``defs/`` folder (``dg.load_from_defs_folder``);
what depends on the config in force — the model families it trains (``defs/family_graph.py``),
sensors, the storage resources of its deployment, the executor — is added by
:func:`build_definitions`.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from kws_assets.config import load_config
from kws_assets.defs.family_graph import family_definitions
from kws_assets.defs.sensors import build_sensors
from kws_assets.lib.executors import executor_from_env
from kws_assets.lib.progress import RUN_LOGGERS
from kws_assets.lib.resources import KwsSettings, storage_resources
from kws_assets.settings import config_path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def build_definitions(
    config_file: str | os.PathLike[str] | None = None, executor: dg.ExecutorDefinition | None = None
) -> dg.Definitions:
    """Everything in ``defs/`` plus the sensors and resources of ``config_file`` (default: the
    config in force, ``$KWS_CONFIG`` or ``./kws.yaml``).

    ``executor`` replaces the executor ``$KWS_EXECUTOR`` names (default in-process; ``celery``
    and ``multiprocess`` in ``lib/executors.py``), e.g. with ``dagster_k8s.k8s_job_executor``;
    steps in other processes need ``storage.deployment: s3`` (README, "Scaling out").
    """
    if config_file is None:
        config_file = config_path()
    cfg = load_config(config_file)
    folder = dg.load_from_defs_folder(project_root=PROJECT_ROOT)
    configured = dg.Definitions(
        sensors=build_sensors(cfg),
        executor=executor or executor_from_env(),
        loggers=RUN_LOGGERS,
        resources={
            "settings": KwsSettings(config_path=str(config_file) if config_file else ""),
            # clip_store, io_manager, model_io_manager (+ s3): local or S3 per storage.deployment
            **storage_resources(cfg),
        },
    )
    return dg.Definitions.merge(folder, family_definitions(cfg), configured)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
