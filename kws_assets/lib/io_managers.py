"""IO managers: polars tables as Parquet, model checkpoints and artifact folders, in a local
folder or on S3.

All three are ``dg.UPathIOManager`` subclasses — so partitioned assets get one object per partition
and paths follow Dagster's conventions — whose bytes go through an
:class:`~kws_assets.core.storage.object_store.ObjectStore`.  That gives every table the store's
guarantees: an atomic write (staged file + rename locally, one PUT of a finished object on S3),
so a reader or a re-run after a crash never sees half a table; transient errors retried by the
S3 client and then by a step retry (``dg.RetryRequested``); permanent errors failing the step at
once with the object's URI and the reason (:mod:`kws_assets.lib.retries`).

Artifact folders (the int8 model, the evaluation report, the data card) are asset values too
(:class:`~kws_assets.core.storage.artifact_store.ArtifactFolder`): stored under the same root,
loaded as a local folder on whichever machine runs the next step (:mod:`artifact_store`).

Deployments pick the flavour (``storage.deployment`` in ``kws.yaml``): the local IO managers take
a ``base_path``; the ``S3...`` ones take a ``dagster-aws`` ``S3Resource`` plus bucket and prefix.
That resource only carries the one S3 configuration
(:class:`~kws_assets.core.storage.s3.S3Connection`: endpoint, region, retries): the boto3 client
of the object store and the ``s3://`` UPath of the base path are both built from it.
"""

import io
from abc import abstractmethod
from pathlib import Path
from typing import Any, Final

import dagster as dg
import polars as pl
import torch
from dagster_aws.s3 import S3Resource
from upath import UPath

from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.storage.artifact_store import (
    ArtifactFolder,
    artifact_exists,
    load_artifact,
    store_artifact,
)
from kws_assets.core.storage.object_store import (
    LocalObjectStore,
    ObjectStore,
    S3ObjectStore,
    relative_key,
)
from kws_assets.core.storage.parquet_stream import StagedParquet, place_staged_file
from kws_assets.core.storage.s3 import S3Connection
from kws_assets.lib.retries import FailFastObjectStore

PARQUET_COMPRESSION: Final = "zstd"


def escape_dotdot_segments(partition: str) -> str:
    """``..`` path segments of a partition key percent-encoded (``%2E%2E``), as Dagster's own
    helper for hierarchical file systems does, so a key never climbs out of its asset's folder."""
    return "/".join("%2E%2E" if part == ".." else part for part in partition.split("/"))


def table_metadata(df: pl.DataFrame) -> dict[str, Any]:
    """What a user wants to see of a table at a glance: rows, columns and their types."""
    columns = [dg.TableColumn(name, str(dtype)) for name, dtype in df.schema.items()]
    return {
        "dagster/row_count": dg.MetadataValue.int(df.height),
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }


def parquet_bytes(df: pl.DataFrame) -> bytes:
    """A whole Parquet file in memory (zstd, column statistics), ready for one atomic write."""
    buffer = io.BytesIO()
    df.write_parquet(buffer, compression=PARQUET_COMPRESSION, statistics=True)
    return buffer.getvalue()


class ObjectStoreUPathIOManager(dg.UPathIOManager):
    """A UPathIOManager whose reads and writes are whole objects of an :class:`ObjectStore`."""

    def __init__(self, objects: ObjectStore, s3: S3Connection | None = None) -> None:
        self.objects = (
            objects if isinstance(objects, FailFastObjectStore) else FailFastObjectStore(objects)
        )
        # The base path of an S3 store is bound to the same connection as its client, so that
        # anything Dagster does through the UPath reaches the same endpoint.
        super().__init__(base_path=(s3 or S3Connection()).upath(objects.root_uri))

    # Paths -> object keys ---------------------------------------------------------------------

    def key_for_path(self, path: UPath) -> str:
        return relative_key(path.as_posix(), self._base_path.as_posix())

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        # Partition keys are data (keywords, batch names): ".." segments are escaped (the
        # override point Dagster documents for hierarchical file systems).
        return super().make_safe_partition_path(base_path, escape_dotdot_segments(partition))

    # UPathIOManager hooks (dump_to_path / load_from_path: per subclass) ---------------------

    def path_exists(self, path: UPath) -> bool:
        return self.objects.exists(self.key_for_path(path))

    def unlink(self, path: UPath) -> None:
        self.objects.delete(self.key_for_path(path))

    def make_directory(self, path: UPath) -> None:
        return None  # the object store creates folders (locally) or needs none (S3)

    def _handle_transition_to_partitioned_asset(
        self, context: dg.OutputContext, path: UPath
    ) -> None:
        # Same rule as UPathIOManager's, through the object store instead of fsspec: an object
        # left where the partition folder goes (the asset used to be unpartitioned) is removed.
        key = self.key_for_path(path)
        if self.objects.exists(key):
            context.log.warning(
                f"removing {self.objects.uri_for(key)}: {context.asset_key} is "
                "now partitioned and stores one object per partition there"
            )
            self.objects.delete(key)


class ObjectBytesUPathIOManager(ObjectStoreUPathIOManager):
    """Each value is one object: the bytes a subclass serializes it to."""

    @abstractmethod
    def serialize(self, context: dg.OutputContext, obj: Any) -> bytes:
        """The bytes stored for ``obj``."""

    @abstractmethod
    def deserialize(self, context: dg.InputContext, data: bytes) -> Any:
        """The object stored as ``data``."""

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        self.objects.put_bytes(self.key_for_path(path), self.serialize(context, obj))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        # A missing object raises ObjectNotFound, a FileNotFoundError, as UPathIOManager expects.
        return self.deserialize(context, self.objects.get_bytes(self.key_for_path(path)))


def place_staged_parquet(objects: ObjectStore, key: str, staged: StagedParquet) -> str:
    """Streaming write path (issue 6): store a Parquet file an asset already wrote, batch by
    batch, to local disk (:class:`~kws_assets.core.storage.parquet_stream.StagedParquet`) at
    ``key``.

    In a local store the finished file is renamed into place (copied first if it sits on another
    file system), never loaded into memory; other stores get its bytes in one atomic put.
    The staged file is gone afterwards either way.  Returns the object's URI.
    """
    inner = objects.inner if isinstance(objects, FailFastObjectStore) else objects
    try:
        if isinstance(inner, LocalObjectStore):
            target = place_staged_file(staged, inner.uri_for(key))
            return str(target)
        return objects.put_bytes(key, staged.path.read_bytes())
    finally:
        staged.discard()


def staged_table_metadata(staged: StagedParquet) -> dict[str, Any]:
    """:func:`table_metadata` of a staged table, from what its writer recorded."""
    columns = [dg.TableColumn(name, dtype) for name, dtype in staged.columns.items()]
    return {
        "dagster/row_count": dg.MetadataValue.int(staged.rows),
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }


class PolarsParquetUPathIOManager(ObjectBytesUPathIOManager):
    """Tables as Parquet; an asset may also return a :class:`StagedParquet` it streamed itself."""

    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, StagedParquet):
            place_staged_parquet(self.objects, self.key_for_path(path), obj)
            return
        super().dump_to_path(context, obj, path)

    def serialize(self, context: dg.OutputContext, obj: pl.DataFrame) -> bytes:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a polars DataFrame, "
                f"got {type(obj).__name__}"
            )
        return parquet_bytes(obj)

    def deserialize(self, context: dg.InputContext, data: bytes) -> pl.DataFrame:
        return pl.read_parquet(io.BytesIO(data))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        # An input annotated pl.LazyFrame gets the table scanned, not read: a consumer that
        # needs some rows or columns (one split, a chunk at a time) loads only those.
        if context.dagster_type.typing_type is pl.LazyFrame:
            return self.scan(path)
        return super().load_from_path(context, path)

    def scan(self, path: UPath) -> pl.LazyFrame:
        """The stored table as a lazy frame: scanned in place in a local store; other stores
        (S3) hand over the object's bytes, read once (the object is not kept on local disk)."""
        key = self.key_for_path(path)
        local = self.objects.local_path(key)
        if local is not None:
            if not local.is_file():
                raise FileNotFoundError(f"no table at {local}")
            return pl.scan_parquet(local)
        return pl.read_parquet(io.BytesIO(self.objects.get_bytes(key))).lazy()

    def get_metadata(
        self, context: dg.OutputContext, obj: pl.DataFrame | StagedParquet
    ) -> dict[str, Any]:
        if isinstance(obj, StagedParquet):
            return staged_table_metadata(obj)
        return table_metadata(obj)


class TorchCheckpointUPathIOManager(ObjectBytesUPathIOManager):
    """Typed model checkpoints (:class:`ModelCheckpoint`) saved with ``torch.save``."""

    extension = ".pt"

    def serialize(self, context: dg.OutputContext, obj: ModelCheckpoint) -> bytes:
        if not isinstance(obj, ModelCheckpoint):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected a ModelCheckpoint, "
                f"got {type(obj).__name__}"
            )
        buffer = io.BytesIO()
        torch.save(obj.to_dict(), buffer)
        return buffer.getvalue()

    def deserialize(self, context: dg.InputContext, data: bytes) -> ModelCheckpoint:
        return checkpoint_from_bytes(data)

    def stored(self, asset_key: dg.AssetKey) -> ModelCheckpoint:
        """The checkpoint stored for an unpartitioned asset now (where ``handle_output`` put its
        last materialization): what a re-run of that asset warm-starts from.  A missing object
        raises ``FileNotFoundError``; an unreadable one whatever unpickling it raised."""
        *folders, name = asset_key.path
        path = self._base_path.joinpath(*folders, name + self.extension)
        return checkpoint_from_bytes(self.objects.get_bytes(self.key_for_path(path)))


def checkpoint_from_bytes(data: bytes) -> ModelCheckpoint:
    """A checkpoint from the bytes :class:`TorchCheckpointUPathIOManager` stored."""
    return ModelCheckpoint.from_dict(
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    )


class ArtifactFolderUPathIOManager(ObjectStoreUPathIOManager):
    """Artifact folders: stored as a folder (local) or objects under a prefix (S3) with an index
    written last; loaded as a local folder, downloaded and verified into ``cache_root`` when the
    store is remote."""

    extension = ""

    def __init__(
        self, objects: ObjectStore, cache_root: str, s3: S3Connection | None = None
    ) -> None:
        super().__init__(objects, s3)
        self.cache_root = Path(cache_root)  # local copies: always this machine's disk

    def dump_to_path(self, context: dg.OutputContext, obj: ArtifactFolder, path: UPath) -> None:
        if not isinstance(obj, ArtifactFolder):
            raise TypeError(
                f"{context.asset_key.to_user_string()}: expected an ArtifactFolder, "
                f"got {type(obj).__name__}"
            )
        store_artifact(self.objects, self.key_for_path(path), obj)

    def load_from_path(self, context: dg.InputContext, path: UPath) -> ArtifactFolder:
        return load_artifact(self.objects, self.key_for_path(path), self.cache_root)

    def path_exists(self, path: UPath) -> bool:
        return artifact_exists(self.objects, self.key_for_path(path))

    def get_metadata(self, context: dg.OutputContext, obj: ArtifactFolder) -> dict[str, Any]:
        return {
            "artifact_files": dg.MetadataValue.int(
                sum(1 for p in obj.path.rglob("*") if p.is_file())
            )
        }


def _local_objects(base_path: str) -> LocalObjectStore:
    if "://" in base_path:
        raise ValueError(
            f"base_path {base_path!r}: a local folder is expected here; for S3 use "
            "the S3 IO managers (storage.deployment: s3)"
        )
    objects = LocalObjectStore.at(base_path)
    objects.sweep_partials()  # staging files of killed writers are removed, live ones kept
    return objects


def s3_connection_of(s3: S3Resource) -> S3Connection:
    """The one S3 configuration an ``S3Resource`` carries (``resources.s3_resource`` builds it
    from :class:`S3Connection`; only endpoint, region and retries are used)."""
    return S3Connection(
        endpoint_url=s3.endpoint_url or "", region=s3.region_name or "", retries=s3.max_attempts
    )


def s3_resource_for(connection: S3Connection) -> S3Resource:
    """dagster-aws's S3 resource for ``connection``: endpoint, region and retries only.

    ``S3Resource.max_attempts`` goes to botocore's ``retries={"max_attempts": n}``, which botocore
    reads as the number of retries after the first attempt, as ``S3Connection.retries`` does.
    """
    return S3Resource(
        endpoint_url=connection.endpoint_url or None,
        region_name=connection.region or None,
        max_attempts=connection.retries,
    )


def _s3_objects(s3: S3Resource, bucket: str, prefix: str) -> S3ObjectStore:
    return S3ObjectStore(s3_connection_of(s3).boto3_client(), bucket, prefix)


class PolarsParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Stores polars DataFrames as Parquet files under the local folder ``base_path``."""

    base_path: str

    def create_io_manager(self, context: dg.InitResourceContext) -> PolarsParquetUPathIOManager:
        return PolarsParquetUPathIOManager(_local_objects(self.base_path))


class TorchCheckpointIOManager(dg.ConfigurableIOManagerFactory):
    """Stores trained-model checkpoints (a dict of state and metadata) with ``torch.save``."""

    base_path: str

    def create_io_manager(self, context: dg.InitResourceContext) -> TorchCheckpointUPathIOManager:
        return TorchCheckpointUPathIOManager(_local_objects(self.base_path))


class S3PolarsParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Stores polars DataFrames as Parquet objects under ``s3://bucket/prefix``."""

    s3: dg.ResourceDependency[S3Resource]
    bucket: str
    prefix: str = ""

    def create_io_manager(self, context: dg.InitResourceContext) -> PolarsParquetUPathIOManager:
        return PolarsParquetUPathIOManager(
            _s3_objects(self.s3, self.bucket, self.prefix), s3_connection_of(self.s3)
        )


class S3TorchCheckpointIOManager(dg.ConfigurableIOManagerFactory):
    """Stores trained-model checkpoints as objects under ``s3://bucket/prefix``."""

    s3: dg.ResourceDependency[S3Resource]
    bucket: str
    prefix: str = ""

    def create_io_manager(self, context: dg.InitResourceContext) -> TorchCheckpointUPathIOManager:
        return TorchCheckpointUPathIOManager(
            _s3_objects(self.s3, self.bucket, self.prefix), s3_connection_of(self.s3)
        )


class ArtifactIOManager(dg.ConfigurableIOManagerFactory):
    """Stores artifact folders under the local folder ``base_path`` (each one a real folder)."""

    base_path: str

    def create_io_manager(self, context: dg.InitResourceContext) -> ArtifactFolderUPathIOManager:
        return ArtifactFolderUPathIOManager(
            _local_objects(self.base_path), cache_root=self.base_path
        )


class S3ArtifactIOManager(dg.ConfigurableIOManagerFactory):
    """Stores artifact folders as objects under ``s3://bucket/prefix``; a step that reads one gets
    a verified local copy under ``cache_root``."""

    s3: dg.ResourceDependency[S3Resource]
    bucket: str
    prefix: str = ""
    cache_root: str

    def create_io_manager(self, context: dg.InitResourceContext) -> ArtifactFolderUPathIOManager:
        return ArtifactFolderUPathIOManager(
            _s3_objects(self.s3, self.bucket, self.prefix),
            cache_root=self.cache_root,
            s3=s3_connection_of(self.s3),
        )
