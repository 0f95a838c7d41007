"""Parquet written as it is produced: row groups appended batch by batch to a staged local file.

A table too large to hold in memory is built batch by batch with :class:`ParquetBatchWriter`;
each batch is buffered only until a row group is full, then written out.  The finished file is a
:class:`StagedParquet` — a complete Parquet file on local disk that the IO manager moves (or
uploads) to the asset's path.  A writer that fails or is abandoned deletes its temporary file.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import polars as pl
import pyarrow.parquet as pq

from kws_assets.core.storage.atomic_files import copy_file_atomic, fsync_folder
from kws_assets.core.tables import ColumnType

ROW_GROUP_ROWS = 2048
"""Rows per Parquet row group: big enough for efficient scans, small enough to bound memory."""

COMPRESSION = "zstd"
STAGED_SUFFIX = ".parquet.staged"
STALE_STAGED_AGE_S = 6 * 3600.0
"""A staged file this old was left by a killed run (live builds finish long before)."""


@dataclass(frozen=True)
class StagedParquet:
    """A finished Parquet file on local disk, waiting to be moved to its final place.

    ``columns`` maps column names to polars dtype names (for metadata without re-reading).
    """

    path: Path
    rows: int
    columns: dict[str, str] = field(default_factory=dict)

    def read(self) -> pl.DataFrame:
        """The whole table (for tests and small tables; production readers load the final file)."""
        return pl.read_parquet(self.path)

    def discard(self) -> None:
        """Delete the staged file (when it will never be placed)."""
        self.path.unlink(missing_ok=True)


class ParquetBatchWriter:
    """Appends polars DataFrames of one schema to a Parquet file, a row group at a time.

    Use as a context manager: on a clean exit the file is finished and :attr:`staged` describes
    it; on an exception the temporary file is removed.  ``schema`` fixes the column types (and
    makes an empty table writable); batches are cast to it.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        schema: Mapping[str, ColumnType],
        row_group_rows: int = ROW_GROUP_ROWS,
        prefix: str = "table-",
    ) -> None:
        if row_group_rows < 1:
            raise ValueError("row_group_rows must be at least 1")
        self.folder = Path(folder)
        self.schema = pl.Schema(schema)
        self.row_group_rows = row_group_rows
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.folder, prefix=f".{prefix}", suffix=STAGED_SUFFIX)
        os.close(fd)
        self.path = Path(name)
        self._arrow_schema = pl.DataFrame(schema=self.schema).to_arrow().schema
        # Dictionary encoding and min/max statistics help the flat key columns; on the nested
        # float arrays they only cost time (a 490-float MFCC never repeats).
        flat = [name for name, dtype in self.schema.items() if not dtype.is_nested()]
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
            self.path,
            self._arrow_schema,
            compression=COMPRESSION,
            use_dictionary=flat,
            write_statistics=flat,
        )
        self._pending: list[pl.DataFrame] = []
        self._pending_rows = 0
        self.rows = 0
        self.row_groups = 0
        self.staged: StagedParquet | None = None

    def write(self, batch: pl.DataFrame) -> None:
        """Queue a batch; full row groups are written to disk immediately."""
        if self._writer is None:
            raise RuntimeError(f"{self.path}: writer is already closed")
        if list(batch.columns) != list(self.schema.names()):
            raise ValueError(f"batch columns {batch.columns} differ from {self.schema.names()}")
        if batch.height == 0:
            return
        self._pending.append(batch.cast(self.schema))
        self._pending_rows += batch.height
        while self._pending_rows >= self.row_group_rows:
            self._flush(self.row_group_rows)

    def _flush(self, rows: int) -> None:
        assert self._writer is not None
        table = pl.concat(self._pending) if len(self._pending) > 1 else self._pending[0]
        head, rest = table.slice(0, rows), table.slice(rows)
        self._writer.write_table(head.to_arrow().cast(self._arrow_schema), row_group_size=rows)
        self.rows += head.height
        self.row_groups += 1
        self._pending = [rest] if rest.height else []
        self._pending_rows = rest.height

    def close(self) -> StagedParquet:
        """Write what is left and finish the file."""
        if self._writer is None:
            if self.staged is None:
                raise RuntimeError(f"{self.path}: writer was aborted")
            return self.staged
        if self._pending_rows:
            self._flush(self._pending_rows)
        self._writer.close()
        self._writer = None
        with open(self.path, "rb") as fh:  # durable before anyone renames it into place
            os.fsync(fh.fileno())
        self.staged = StagedParquet(
            self.path, self.rows, {name: str(dtype) for name, dtype in self.schema.items()}
        )
        return self.staged

    def abort(self) -> None:
        """Stop and delete the temporary file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._pending = []
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> ParquetBatchWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def place_staged_file(staged: StagedParquet, destination: str | os.PathLike[str]) -> Path:
    """Move a staged file to a local destination atomically (rename, or copy + rename across
    file systems), creating the folder.  Readers see the old file or the new one, never a part."""
    target = Path(destination)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staged.path, target)
        fsync_folder(target.parent)
        return target
    except OSError:
        pass  # another file system: copy next to the target, then rename
    copy_file_atomic(staged.path, target)
    staged.discard()
    return target


def sweep_stale_staged(
    folder: str | os.PathLike[str], max_age_s: float = STALE_STAGED_AGE_S
) -> list[Path]:
    """Delete staged files older than ``max_age_s`` in ``folder`` (left by killed runs); return
    them."""
    root = Path(folder)
    if not root.is_dir():
        return []
    now = time.time()
    removed = []
    for path in root.glob(f".*{STAGED_SUFFIX}"):
        try:
            if now - path.stat().st_mtime > max_age_s:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:
            continue  # another sweeper or its writer got there first
    return removed
