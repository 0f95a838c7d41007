"""Typed resources injected into assets: the pipeline config, the clip store and storage wiring.

Storage resources come in a local and an S3 flavour, chosen per deployment by
``storage.deployment`` in ``kws.yaml`` (the pattern of Dagster's ``project_fully_featured``:
one resource dict per deployment).  ``ClipStoreResource`` is the interface assets depend on;
``LocalClipStoreResource`` and ``S3ClipStoreResource`` implement it.  Every S3 access — these
resources, the IO managers, corpus roots, the landing zone — uses the one configuration
:class:`~kws_assets.core.storage.s3.S3Connection` built from ``storage.s3_endpoint_url``,
``s3_region`` and ``s3_retries`` (botocore ``standard`` retries); the Dagster resource carrying
it is ``dagster-aws``'s ``S3Resource``.
Credentials never appear in config: boto3 resolves them from the environment
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance or pod role).
"""

from abc import ABC, abstractmethod
from functools import cached_property
from typing import Any

import dagster as dg
from dagster_aws.s3 import S3Resource

from kws_assets.config import load_config
from kws_assets.core.storage.clip_store import ClipStore
from kws_assets.core.storage.object_store import LocalObjectStore, ObjectStore, S3ObjectStore
from kws_assets.core.storage.s3 import S3Connection
from kws_assets.lib.io_managers import (
    ArtifactIOManager,
    PolarsParquetIOManager,
    S3ArtifactIOManager,
    S3PolarsParquetIOManager,
    S3TorchCheckpointIOManager,
    TorchCheckpointIOManager,
    s3_connection_of,
    s3_resource_for,
)
from kws_assets.lib.retries import FailFastObjectStore
from kws_assets.settings import KwsConfig, StorageSettings

# Sub-prefixes (S3) and sub-folders (local) of the storage root.
CLIPS = "clips"
TABLES = "tables"
MODELS = "models"
ARTIFACTS = "artifacts"
ARTIFACT_CACHE = "artifact_cache"  # local copies of remote artifacts, per machine


class KwsSettings(dg.ConfigurableResource):
    """The pipeline configuration (``kws.yaml``); ``config_path`` empty means the embedded
    default."""

    config_path: str = ""

    @cached_property
    def config(self) -> KwsConfig:
        return load_config(self.config_path or None)


def settings_resource(defs: dg.Definitions) -> KwsSettings:
    """The ``settings`` resource of a Definitions from ``build_definitions`` (typed: Dagster keeps
    resources as an untyped mapping)."""
    settings = (defs.resources or {}).get("settings")
    if not isinstance(settings, KwsSettings):
        raise TypeError(
            f"these Definitions have no KwsSettings 'settings' resource (got {settings!r}); "
            "build them with kws_assets.definitions.build_definitions"
        )
    return settings


class ClipStoreResource(dg.ConfigurableResource, ABC):
    """Where clip WAVs are written; tables hold the URIs it returns."""

    @abstractmethod
    def open_objects(self) -> ObjectStore:
        """The object store holding the clips."""

    @cached_property
    def store(self) -> ClipStore:
        """The clip store; permanent storage errors fail the step at once (see ``retries``)."""
        return ClipStore(FailFastObjectStore(self.open_objects()))


class LocalClipStoreResource(ClipStoreResource):
    """Clips as WAV files under a local folder (URIs are absolute paths)."""

    root: str

    def open_objects(self) -> ObjectStore:
        return LocalObjectStore.at(self.root)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        removed = LocalObjectStore.at(self.root).sweep_partials()
        if removed and context.log is not None:
            context.log.info(
                f"removed {len(removed)} staging file(s) left by killed writers under {self.root}"
            )


class S3ClipStoreResource(ClipStoreResource):
    """Clips as WAV objects under ``s3://bucket/prefix`` (URIs are ``s3://`` URIs)."""

    s3: dg.ResourceDependency[S3Resource]
    bucket: str
    prefix: str = ""

    def open_objects(self) -> ObjectStore:
        return S3ObjectStore(s3_connection_of(self.s3).boto3_client(), self.bucket, self.prefix)


def s3_prefix(storage: StorageSettings, part: str) -> str:
    """The key prefix of one kind of data (clips, tables, models) under ``storage.s3_prefix``."""
    base = storage.s3_prefix.strip("/")
    return f"{base}/{part}" if base else part


def s3_resource(storage: StorageSettings) -> S3Resource:
    """dagster-aws's S3 resource for this deployment, carrying its one S3 configuration
    (:meth:`S3Connection.from_settings`: endpoint, region and retries; see ``s3_resource_for``)."""
    return s3_resource_for(S3Connection.from_settings(storage))


def local_storage_resources(cfg: KwsConfig) -> dict[str, Any]:
    """Clips, tables, checkpoints and artifacts in folders under ``storage.root``."""
    return {
        "clip_store": LocalClipStoreResource(root=str(cfg.storage_path(CLIPS))),
        "io_manager": PolarsParquetIOManager(base_path=str(cfg.storage_path(TABLES))),
        "model_io_manager": TorchCheckpointIOManager(base_path=str(cfg.storage_path(MODELS))),
        "artifact_io_manager": ArtifactIOManager(base_path=str(cfg.storage_path(ARTIFACTS))),
    }


def s3_storage_resources(cfg: KwsConfig) -> dict[str, Any]:
    """Clips, tables, checkpoints and artifacts under ``s3://<s3_bucket>/<s3_prefix>/``; a step
    that reads an artifact gets a verified local copy under ``storage.root``/artifact_cache."""
    storage = cfg.storage
    s3 = s3_resource(storage)
    bucket = storage.s3_bucket
    return {
        "s3": s3,
        "clip_store": S3ClipStoreResource(s3=s3, bucket=bucket, prefix=s3_prefix(storage, CLIPS)),
        "io_manager": S3PolarsParquetIOManager(
            s3=s3, bucket=bucket, prefix=s3_prefix(storage, TABLES)
        ),
        "model_io_manager": S3TorchCheckpointIOManager(
            s3=s3, bucket=bucket, prefix=s3_prefix(storage, MODELS)
        ),
        "artifact_io_manager": S3ArtifactIOManager(
            s3=s3,
            bucket=bucket,
            prefix=s3_prefix(storage, ARTIFACTS),
            cache_root=str(cfg.storage_path(ARTIFACT_CACHE)),
        ),
    }


STORAGE_RESOURCES_BY_DEPLOYMENT = {
    "local": local_storage_resources,
    "s3": s3_storage_resources,
}


def storage_resources(cfg: KwsConfig) -> dict[str, Any]:
    """The storage resources of the deployment ``cfg.storage.deployment`` names."""
    return STORAGE_RESOURCES_BY_DEPLOYMENT[cfg.storage.deployment](cfg)
