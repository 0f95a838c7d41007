"""Tables the Dagster UI renders natively (``MetadataValue.table``), for what a user reads at a
glance: clips per label and source, quarantine reasons, per-class and per-source metrics.

A table cell is rendered by the UI as plain text (React text nodes, never Markdown or HTML), so a
corpus value (label, speaker, transcript, reject detail) cannot become a link or an image there;
it is only made one line and cut to a readable length
(:func:`~kws_assets.core.text_safety.plain_text`).
Markdown stays for what is not a table: the data card, the model card, plots as images.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import dagster as dg
import numpy as np
import polars as pl

from kws_assets.core.text_safety import plain_text

Cell = str | int | float | bool | None
"""What a ``dg.TableRecord`` may hold."""

SIGNIFICANT_DIGITS = 4
"""Floats are shown to this many significant digits: metadata is read at a glance; the exact
numbers live in the asset's own report (evaluation.json, transfer.json...)."""

_POLARS_TYPES: tuple[tuple[type[pl.DataType], str], ...] = (
    (pl.Boolean, "bool"),
    (pl.Float32, "float"),
    (pl.Float64, "float"),
    (pl.Decimal, "float"),
)


def metadata_table(
    rows: pl.DataFrame | Sequence[Mapping[str, object]],
    columns: Sequence[str] | None = None,
) -> dg.TableMetadataValue:
    """``rows`` as a native UI table with a schema; column types (int, float, string, bool) are
    inferred from the polars dtypes or, for a list of dicts, from the values.

    ``columns`` orders (and selects) the columns; it is needed for an empty list of dicts, which
    has no columns to show otherwise.  Rows of a list may miss keys (a cell left empty); a value
    that is a list or a dict is shown as JSON text; NaN and infinity are shown empty (the UI cannot
    parse them and would drop the row).
    """
    if isinstance(rows, pl.DataFrame):
        frame = rows if columns is None else rows.select(columns)
        names = frame.columns
        types = {name: _polars_type(dtype) for name, dtype in frame.schema.items()}
        dicts: list[Mapping[str, object]] = list(frame.iter_rows(named=True))
    else:
        dicts = [{key: _python(value) for key, value in row.items()} for row in rows]
        if columns is None and not dicts:
            raise ValueError(
                "metadata_table: an empty list of rows has no columns; pass columns=[...] "
                "(the names the table would have)"
            )
        names = list(columns) if columns is not None else _names_in_order(dicts)
        types = {name: _value_type([row.get(name) for row in dicts]) for name in names}
    records = [
        dg.TableRecord({name: _cell(row.get(name), types[name]) for name in names}) for row in dicts
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(name, types[name]) for name in names])
    return dg.MetadataValue.table(records=records, schema=schema)


def label_counts(table: pl.DataFrame, by: str | None = None) -> pl.DataFrame:
    """Clip counts per label (column ``clips``), or per label and each value of ``by`` (one
    column per value, pivoted), sorted by label."""
    if by is None:
        return table.group_by("label").len().sort("label").rename({"len": "clips"})
    if table.is_empty():
        return pl.DataFrame(schema={"label": pl.String})
    return (
        table.group_by("label", by)
        .len()
        .sort(by)
        .pivot(on=by, index="label", values="len")
        .fill_null(0)
        .sort("label")
    )


def label_counts_table(table: pl.DataFrame, by: str | None = None) -> dg.TableMetadataValue:
    """:func:`label_counts` as a UI table."""
    return metadata_table(label_counts(table, by))


CONFUSION_CORNER = "true \\ predicted"
"""Header of the confusion table's first column (the true labels)."""


def confusion_table(
    labels: Sequence[str], matrix: Sequence[Sequence[int]]
) -> dg.TableMetadataValue:
    """A confusion matrix (rows = true label, columns = predicted) as a UI table."""
    if len(matrix) != len(labels) or any(len(row) != len(labels) for row in matrix):
        raise ValueError(
            f"confusion_table: a {len(labels)}-label matrix needs {len(labels)} rows of "
            f"{len(labels)} counts; got rows of {[len(row) for row in matrix]}"
        )
    names = [plain_text(label) for label in labels]
    if len(set(names)) != len(names) or CONFUSION_CORNER in names:
        raise ValueError(f"confusion_table: labels must be distinct column names; got {names}")
    rows = [
        {CONFUSION_CORNER: name, **{col: int(n) for col, n in zip(names, row, strict=True)}}
        for name, row in zip(names, matrix, strict=True)
    ]
    return metadata_table(rows, columns=[CONFUSION_CORNER, *names])


def _python(value: object) -> object:
    """A numpy scalar as the Python value it holds (``np.int64(3)`` is no ``int``)."""
    return value.item() if isinstance(value, np.generic) else value


def _names_in_order(rows: Sequence[Mapping[str, object]]) -> list[str]:
    """Every key of every row, in the order first seen."""
    return list(dict.fromkeys(key for row in rows for key in row))


def _polars_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "int"
    for polars_type, name in _POLARS_TYPES:
        if isinstance(dtype, polars_type):
            return name
    return "string"


def _value_type(values: Sequence[object]) -> str:
    """The column type of a list column: bool, int, float (ints and floats mixed) or string
    (anything else, or a mix)."""
    kinds = {dg.TableMetadataValue.infer_column_type(v) for v in values if v is not None}
    if any(isinstance(v, (list, tuple, dict)) for v in values):
        return "string"
    if kinds == {"int", "float"}:
        return "float"
    return kinds.pop() if len(kinds) == 1 else "string"


def _cell(value: object, column_type: str) -> Cell:
    if value is None:
        return None
    if column_type == "float":
        number = float(value)  # type: ignore[arg-type]  # the column's type says it is a number
        return float(f"{number:.{SIGNIFICANT_DIGITS}g}") if math.isfinite(number) else None
    if column_type in {"int", "bool"}:
        return value  # type: ignore[return-value]  # inferred from the values themselves
    if isinstance(value, (list, tuple, dict)):
        value = json.dumps(value, default=str)
    return plain_text(value)
