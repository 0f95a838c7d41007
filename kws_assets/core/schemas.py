"""pandera (polars) schemas of the pipeline's tables and a validator that splits good and bad rows.

Tables:
- candidate clips (``candidate_clip_schema``): one row per cut 1-s clip, before the quality gate;
- validated clips (``clip_table_schema``): candidate columns + quality metrics + ``split``;
- quarantine (``quarantine_schema``): rejected clips with a reason code and a detail string;
- MFCC features (``mfcc_table_schema``): clip_id, label, split and an (n_frames, n_mfcc) array.

``validate`` never raises for bad data: it returns the passing rows and one failure row per failed
check (row index, column, check, value) so callers can quarantine them.  Schema-level problems (a
missing column, a wrong dtype) are programming errors and raise :class:`TableSchemaError`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pandera.errors as pa_errors
import pandera.polars as pa
import polars as pl

from kws_assets.core.audio.quality import SCHEMA_VIOLATION
from kws_assets.core.dataset.splits import SPLITS
from kws_assets.core.storage.parquet_stream import ROW_GROUP_ROWS
from kws_assets.core.tables import MFCC_COLUMN, QUALITY_COLUMNS

# Columns of a failures table returned by ``validate``.
FAILURE_COLUMNS = ("index", "column", "check", "failure_case")
# Quality columns stored as Float64 (sample_rate is an Int64 column of the clip table itself).
QUALITY_FLOAT_COLUMNS = QUALITY_COLUMNS


class TableSchemaError(ValueError):
    """A table does not have the columns or dtypes its schema requires (a programming error)."""


def _row_check(name: str, description: str, build: Callable[[pl.Expr], pl.Expr]) -> pa.Check:
    """A pandera check from a polars expression that is True for each valid row."""

    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(build(pl.col(data.key)))

    return pa.Check(check, name=name, error=name, description=description)


def not_blank() -> pa.Check:
    """Strings with at least one non-whitespace character."""
    return _row_check(
        "not_blank", "must not be empty", lambda c: c.str.strip_chars().str.len_chars() > 0
    )


def unique_keep_first() -> pa.Check:
    """Values seen before in the column fail; the first occurrence passes."""
    return _row_check("unique", "duplicate value", lambda c: c.is_first_distinct())


def finite() -> pa.Check:
    """Floats that are neither NaN nor infinite."""
    return _row_check("finite", "must be finite", lambda c: c.is_finite())


def finite_array(width: int) -> pa.Check:
    """Array cells (of ``width`` elements in all) whose every element is finite."""
    return _row_check(
        "finite_values",
        "array holds NaN or inf",
        lambda c: c.reshape((-1, width)).arr.eval(pl.element().is_finite()).arr.all(),
    )


def _text(*checks: pa.Check) -> pa.Column:
    return pa.Column(pl.Utf8, checks=list(checks), nullable=False)


def _candidate_columns(
    labels: Sequence[str], sample_rate: int, clip_samples: int
) -> dict[str, pa.Column]:
    return {
        "clip_id": _text(not_blank(), unique_keep_first()),
        "uri": _text(not_blank()),
        "label": _text(pa.Check.isin(list(labels))),
        "source": _text(not_blank()),
        "speaker": _text(not_blank()),
        "language": _text(),
        "origin_id": _text(),
        "start_s": pa.Column(pl.Float64, checks=[finite(), pa.Check.ge(0.0)], nullable=False),
        "sample_rate": pa.Column(pl.Int64, checks=pa.Check.eq(sample_rate), nullable=False),
        "num_samples": pa.Column(pl.Int64, checks=pa.Check.eq(clip_samples), nullable=False),
    }


def candidate_clip_schema(
    labels: Sequence[str], sample_rate: int, clip_samples: int
) -> pa.DataFrameSchema:
    """Cut clips before the quality gate: ids, provenance, label, speaker and clip format."""
    return pa.DataFrameSchema(
        _candidate_columns(labels, sample_rate, clip_samples), strict=False, name="candidate_clips"
    )


def clip_table_schema(
    labels: Sequence[str], sample_rate: int, clip_samples: int
) -> pa.DataFrameSchema:
    """The validated clip set: candidate columns, finite quality metrics and a train/val/test
    split."""
    columns = _candidate_columns(labels, sample_rate, clip_samples)
    for name in QUALITY_FLOAT_COLUMNS:
        columns[name] = pa.Column(pl.Float64, checks=finite(), nullable=False)
    columns["split"] = _text(pa.Check.isin(list(SPLITS)))
    return pa.DataFrameSchema(columns, strict=False, name="clips")


def quarantine_schema() -> pa.DataFrameSchema:
    """Rejected clips: what they were, a non-empty reason code and a free-form detail."""
    columns = {name: _text() for name in ("clip_id", "source", "uri", "label", "speaker")}
    columns["reason"] = _text(not_blank())
    columns["detail"] = _text()
    return pa.DataFrameSchema(columns, strict=False, name="quarantine")


def mfcc_table_schema(n_frames: int, n_mfcc: int, labels: Sequence[str]) -> pa.DataFrameSchema:
    """MFCC features: clip_id (unique), label, split and ``mfcc`` = Array(Float32, (n_frames,
    n_mfcc)).

    Build the column from a float32 numpy array of shape [n, n_frames, n_mfcc] with
    ``pl.Series("mfcc", array)``.
    """
    return pa.DataFrameSchema(
        {
            "clip_id": _text(not_blank(), unique_keep_first()),
            "label": _text(pa.Check.isin(list(labels))),
            "split": _text(pa.Check.isin(list(SPLITS))),
            MFCC_COLUMN: pa.Column(
                pl.Array(pl.Float32, (n_frames, n_mfcc)),
                checks=finite_array(n_frames * n_mfcc),
                nullable=False,
            ),
        },
        strict=False,
        name=MFCC_COLUMN,
    )


def empty_failures() -> pl.DataFrame:
    """A failures table with no rows (the shape ``validate`` returns)."""
    return pl.DataFrame(
        schema={"index": pl.Int64, "column": pl.Utf8, "check": pl.Utf8, "failure_case": pl.Utf8}
    )


def validate(df: pl.DataFrame, schema: pa.DataFrameSchema) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows passing every check, failures) after validating ``df`` lazily (all checks run).

    Failures has one row per failed check of a row: ``index`` (0-based row position in ``df``),
    ``column``, ``check`` (e.g. ``isin([...])``, ``unique``, ``finite``, ``not_nullable``) and
    ``failure_case`` (the offending value as text), sorted by index.  Of duplicate values of a
    unique column only the later rows fail.  Raises TableSchemaError for missing columns or wrong
    dtypes, never for bad values.
    """
    try:
        schema.validate(df, lazy=True)
    except pa_errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return df, empty_failures()
    structural = cases.filter(pl.col("index").is_null())
    if structural.height:
        problems = "; ".join(
            f"{row['check']} ({row['column']}: {row['failure_case']})"
            for row in structural.iter_rows(named=True)
        )
        raise TableSchemaError(f"table does not match schema {schema.name!r}: {problems}")
    failures = (
        cases.select(
            pl.col("index").cast(pl.Int64),
            pl.col("column").cast(pl.Utf8),
            pl.col("check").cast(pl.Utf8),
            pl.col("failure_case").cast(pl.Utf8),
        )
        .unique(maintain_order=True)
        .sort(["index", "column", "check"])
    )
    bad_rows = failures.get_column("index").unique()
    good = (
        df.with_row_index("__row")
        .filter(~pl.col("__row").cast(pl.Int64).is_in(bad_rows.implode()))
        .drop("__row")
    )
    return good, failures


def validate_lazy(
    frame: pl.LazyFrame, schema: pa.DataFrameSchema, chunk_rows: int = ROW_GROUP_ROWS
) -> tuple[int, pl.DataFrame]:
    """``(rows, failures)`` of :func:`validate` for a table too large to hold whole: the scalar
    columns of the schema are validated over the whole table (uniqueness included), the array
    columns ``chunk_rows`` rows at a time; ``index`` is the row's position in the table."""
    arrays = {n: c for n, c in schema.columns.items() if isinstance(c.dtype.type, pl.Array)}
    scalars = {n: c for n, c in schema.columns.items() if n not in arrays}
    total = int(frame.select(pl.len()).collect().item())
    parts = []
    if scalars:
        scalar_schema = schema.remove_columns(list(arrays))
        parts.append(validate(frame.select(list(scalars)).collect(), scalar_schema)[1])
    if arrays:
        array_schema = schema.remove_columns(list(scalars))
        for start in range(0, total, chunk_rows):
            chunk = frame.slice(start, chunk_rows).select(list(arrays)).collect()
            failures = validate(chunk, array_schema)[1]
            parts.append(failures.with_columns(pl.col("index") + start))
    if not parts:
        return total, empty_failures()
    return total, pl.concat(parts).sort(["index", "column", "check"])


def failures_by_row(failures: pl.DataFrame) -> pl.DataFrame:
    """One row per failing table row: ``index``, ``reason`` (SCHEMA_VIOLATION) and ``detail``
    listing every failed ``column:check=value`` — ready to join into quarantine rows."""
    if failures.height == 0:
        return pl.DataFrame(schema={"index": pl.Int64, "reason": pl.Utf8, "detail": pl.Utf8})
    return (
        failures.with_columns(
            pl.format(
                "{}:{}={}", "column", "check", pl.col("failure_case").fill_null("null")
            ).alias("item")
        )
        .group_by("index", maintain_order=True)
        .agg(pl.col("item").str.join("; ").alias("detail"))
        .select("index", pl.lit(SCHEMA_VIOLATION).alias("reason"), "detail")
        .sort("index")
    )
