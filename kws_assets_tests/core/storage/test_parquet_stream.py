"""Parquet written batch by batch: row groups appear as data comes, the file reads back whole,
failures leave nothing behind, placing is a rename."""

from __future__ import annotations

import os
import time

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from kws_assets.core.storage.parquet_stream import (
    ParquetBatchWriter,
    place_staged_file,
    sweep_stale_staged,
)

SCHEMA = {"clip_id": pl.String, "value": pl.Array(pl.Float32, (3, 2))}


def batch(start: int, n: int) -> pl.DataFrame:
    values = np.arange(start * 6, (start + n) * 6, dtype=np.float32).reshape(n, 3, 2)
    return pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(start, start + n)],
            "value": pl.Series(values, dtype=SCHEMA["value"]),
        }
    )


def test_row_groups_are_written_as_batches_arrive(tmp_path) -> None:
    writer = ParquetBatchWriter(tmp_path, SCHEMA, row_group_rows=10)
    writer.write(batch(0, 7))
    assert writer.row_groups == 0  # buffered: not a full row group yet
    writer.write(batch(7, 7))
    assert writer.row_groups == 1 and writer.rows == 10  # one full group on disk, 4 rows pending
    writer.write(batch(14, 25))
    assert writer.row_groups == 3
    staged = writer.close()
    assert staged.rows == 39 and writer.row_groups == 4
    meta = pq.ParquetFile(staged.path).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [10, 10, 10, 9]
    table = staged.read()
    assert table.schema == pl.Schema(SCHEMA)
    assert table.equals(pl.concat([batch(0, 7), batch(7, 7), batch(14, 25)]))
    assert staged.columns == {"clip_id": "String", "value": str(SCHEMA["value"])}


def test_an_empty_table_is_a_valid_file_with_the_schema(tmp_path) -> None:
    with ParquetBatchWriter(tmp_path, SCHEMA) as writer:
        writer.write(batch(0, 0))
    table = writer.staged.read()
    assert table.height == 0 and table.schema == pl.Schema(SCHEMA)


def test_wrong_columns_are_refused(tmp_path) -> None:
    with ParquetBatchWriter(tmp_path, SCHEMA) as writer:
        with pytest.raises(ValueError):
            writer.write(batch(0, 2).select("value", "clip_id"))
        writer.write(batch(0, 2))


def test_a_failure_removes_the_temporary_file(tmp_path) -> None:
    with (
        pytest.raises(RuntimeError),
        ParquetBatchWriter(tmp_path, SCHEMA, row_group_rows=2) as writer,
    ):
        writer.write(batch(0, 5))
        raise RuntimeError("the producer failed")
    assert not writer.path.exists()
    assert list(tmp_path.iterdir()) == []


def test_place_moves_the_file_and_creates_folders(tmp_path) -> None:
    with ParquetBatchWriter(tmp_path / "staging", SCHEMA) as writer:
        writer.write(batch(0, 3))
    target = tmp_path / "tables" / "deep" / "t.parquet"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old table")
    assert place_staged_file(writer.staged, target) == target
    assert not writer.staged.path.exists()
    assert pl.read_parquet(target).equals(batch(0, 3))


def test_sweep_removes_only_old_staged_files(tmp_path) -> None:
    old = ParquetBatchWriter(tmp_path, SCHEMA)
    old_path = old.close().path
    live = ParquetBatchWriter(tmp_path, SCHEMA)
    day_ago = time.time() - 24 * 3600
    os.utime(old_path, (day_ago, day_ago))
    other = tmp_path / "keep.parquet"
    other.write_bytes(b"x")
    os.utime(other, (day_ago, day_ago))
    assert sweep_stale_staged(tmp_path) == [old_path]
    assert live.path.exists() and other.exists()
    live.abort()
    assert sweep_stale_staged(tmp_path / "missing") == []
