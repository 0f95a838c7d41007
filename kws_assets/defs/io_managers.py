"""IO managers: polars tables as Parquet and torch checkpoints, on any path UPath understands.

Both are built on ``dg.UPathIOManager`` so partitioned assets get one file per partition and the
same code serves a local folder or an object-store prefix.  Local writes go to a temporary name
and are renamed into place, so a reader (or a re-run after a crash) never sees half a file.
"""


import io
import os
import tempfile
from typing import Any

import dagster as dg
import polars as pl
import torch
from upath import UPath

_LOCAL_PROTOCOLS = {"", "file", "local"}


def _write_bytes_atomic(path: UPath, payload: bytes) -> None:
    if path.protocol in _LOCAL_PROTOCOLS:
        local = os.fspath(path.path if hasattr(path, "path") else path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(local), prefix=f".{os.path.basename(local)}.",
                                   suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, local)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    else:
        # An object-store PUT of a finished buffer is atomic: readers see all of it or nothing.
        path.write_bytes(payload)


def table_metadata(df: pl.DataFrame) -> dict[str, Any]:
    """What a user wants to see of a table at a glance: rows, columns and their types."""
    columns = [dg.TableColumn(name, str(dtype)) for name, dtype in df.schema.items()]
    return {
        "dagster/row_count": dg.MetadataValue.int(df.height),
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }


class PolarsParquetUPathIOManager(dg.UPathIOManager):
    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a polars DataFrame, "
                            f"got {type(obj).__name__}")
        buffer = io.BytesIO()
        obj.write_parquet(buffer, compression="zstd", statistics=True)
        _write_bytes_atomic(path, buffer.getvalue())

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame:
        with path.open("rb") as fh:
            return pl.read_parquet(fh)

    def get_metadata(self, context: dg.OutputContext, obj: pl.DataFrame) -> dict[str, Any]:
        return table_metadata(obj)


class PolarsParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Stores polars DataFrames as Parquet files under ``base_path`` (a folder or s3:// prefix)."""

    base_path: str

    def create_io_manager(self, context: dg.InitResourceContext) -> PolarsParquetUPathIOManager:
        return PolarsParquetUPathIOManager(base_path=UPath(self.base_path))


class TorchCheckpointUPathIOManager(dg.UPathIOManager):
    extension = ".pt"

    def dump_to_path(self, context: dg.OutputContext, obj: dict, path: UPath) -> None:
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        _write_bytes_atomic(path, buffer.getvalue())

    def load_from_path(self, context: dg.InputContext, path: UPath) -> dict:
        with path.open("rb") as fh:
            return torch.load(io.BytesIO(fh.read()), map_location="cpu", weights_only=False)


class TorchCheckpointIOManager(dg.ConfigurableIOManagerFactory):
    """Stores trained-model checkpoints (a dict of state and metadata) with ``torch.save``."""

    base_path: str

    def create_io_manager(self, context: dg.InitResourceContext) -> TorchCheckpointUPathIOManager:
        return TorchCheckpointUPathIOManager(base_path=UPath(self.base_path))
