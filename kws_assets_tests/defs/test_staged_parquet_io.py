"""The Parquet IO manager's streaming path: an asset returns a StagedParquet it wrote batch by
batch, the IO manager renames it into place, downstream assets load a DataFrame as usual."""

from __future__ import annotations

import dagster as dg
import polars as pl

from kws_assets.core.storage.parquet_stream import ParquetBatchWriter, StagedParquet
from kws_assets.lib.io_managers import PolarsParquetIOManager

SCHEMA = {"clip_id": pl.String, "x": pl.Array(pl.Float32, 2)}


def test_staged_table_is_moved_into_place_and_loads_as_a_dataframe(tmp_path) -> None:
    staging = tmp_path / "staging"
    staged_paths = []

    @dg.asset
    def streamed() -> StagedParquet:
        with ParquetBatchWriter(staging, SCHEMA, row_group_rows=3) as writer:
            for start in range(0, 10, 4):
                writer.write(
                    pl.DataFrame(
                        {
                            "clip_id": [f"c{i}" for i in range(start, min(start + 4, 10))],
                            "x": pl.Series(
                                [[float(i), -float(i)] for i in range(start, min(start + 4, 10))],
                                dtype=SCHEMA["x"],
                            ),
                        }
                    )
                )
        staged_paths.append(writer.staged.path)
        return writer.staged

    @dg.asset
    def downstream(streamed: pl.DataFrame) -> pl.DataFrame:
        return streamed.select(pl.col("x").arr.first().sum().alias("total"))

    # An explicit instance, held for the whole test: the ephemeral one that materialize() makes
    # by default can be garbage-collected while output metadata still refers to it.
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [streamed, downstream],
            instance=instance,
            resources={"io_manager": PolarsParquetIOManager(base_path=str(tmp_path / "tables"))},
        )
    assert result.success
    table = pl.read_parquet(tmp_path / "tables" / "streamed.parquet")
    assert table["clip_id"].to_list() == [f"c{i}" for i in range(10)]
    assert not staged_paths[0].exists()  # renamed, not copied
    assert list(staging.iterdir()) == []
    assert result.output_for_node("downstream")["total"].to_list() == [45.0]
    materialization = result.asset_materializations_for_node("streamed")[0]
    assert materialization.metadata["dagster/row_count"].value == 10
    columns = {
        c.name: c.type for c in materialization.metadata["dagster/column_schema"].value.columns
    }
    assert columns == {"clip_id": "String", "x": str(SCHEMA["x"])}
