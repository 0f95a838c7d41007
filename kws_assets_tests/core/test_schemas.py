"""Tests of kws_assets.core.schemas: good tables pass, bad rows are reported by index and check."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from kws_assets.core import schemas
from kws_assets.core.audio.quality import SCHEMA_VIOLATION
from kws_assets.core.schemas import (
    TableSchemaError,
    candidate_clip_schema,
    clip_table_schema,
    failures_by_row,
    mfcc_table_schema,
    quarantine_schema,
    validate,
)
from kws_assets.core.tables import QUALITY_COLUMNS
from kws_assets.settings import KwsConfig

CONFIG = KwsConfig()
LABELS = CONFIG.labels
SR = CONFIG.audio.sample_rate
CLIP = CONFIG.audio.clip_samples


def clip_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "clip_id": f"{i:016x}",
                "uri": f"/store/clips/{i}.wav",
                "label": LABELS[i % len(LABELS)],
                "source": "synthetic",
                "speaker": f"en-us+m{i % 3}",
                "language": "en",
                "origin_id": f"recipe-{i}",
                "start_s": 0.25 * i,
                "sample_rate": SR,
                "num_samples": CLIP,
                "duration_s": 1.0,
                "peak_dbfs": -3.0,
                "rms_dbfs": -20.0,
                "clipping_ratio": 0.0,
                "dc_offset": 0.001,
                "snr_db": 25.0,
                "speech_ratio": 0.4,
                "split": ("train", "val", "test")[i % 3],
            }
        )
    return rows


def clip_frame(rows: list[dict]) -> pl.DataFrame:
    string_cols = ["clip_id", "uri", "label", "source", "speaker", "language", "origin_id", "split"]
    dtypes = dict.fromkeys(string_cols, pl.Utf8)
    dtypes |= {"sample_rate": pl.Int64, "num_samples": pl.Int64, "start_s": pl.Float64}
    dtypes |= {c: pl.Float64 for c in QUALITY_COLUMNS if c != "sample_rate"}
    return pl.DataFrame(rows, schema=dtypes)


SCHEMA = clip_table_schema(LABELS, SR, CLIP)


def failures_as_set(failures: pl.DataFrame) -> set[tuple[int, str, str]]:
    return {(r["index"], r["column"], r["check"]) for r in failures.iter_rows(named=True)}


def test_good_table_passes_unchanged():
    df = clip_frame(clip_rows(12)).with_columns(pl.lit("extra").alias("note"))
    good, failures = validate(df, SCHEMA)
    assert good.equals(df)
    assert failures.height == 0 and tuple(failures.columns) == schemas.FAILURE_COLUMNS
    candidates = df.select(list(clip_rows(1)[0])[:10])
    assert "split" not in candidates.columns and "snr_db" not in candidates.columns
    good_candidates, _ = validate(candidates, candidate_clip_schema(LABELS, SR, CLIP))
    assert good_candidates.height == 12


def test_empty_table_passes():
    good, failures = validate(clip_frame([]), SCHEMA)
    assert good.height == 0 and failures.height == 0


def test_bad_rows_are_reported_by_index_and_check():
    rows = clip_rows(8)
    rows[1]["label"] = "banana"  # not a label
    rows[2]["sample_rate"] = 8000  # wrong rate
    rows[3]["snr_db"] = math.nan  # NaN metric
    rows[4]["rms_dbfs"] = -math.inf  # infinite metric
    rows[5]["clip_id"] = rows[0]["clip_id"]  # duplicate id: the first occurrence stays good
    df = clip_frame(rows)
    good, failures = validate(df, SCHEMA)
    found = failures_as_set(failures)
    assert {i for i, _, _ in found} == {1, 2, 3, 4, 5}
    checks = {(i, col): c for i, col, c in found}
    assert checks[(1, "label")].startswith("isin")
    assert checks[(2, "sample_rate")] == f"equal_to({SR})"
    assert (3, "snr_db", "finite") in found
    assert (4, "rms_dbfs", "finite") in found
    assert (5, "clip_id", "unique") in found
    assert not any(i == 0 for i, _, _ in found)
    assert good.get_column("clip_id").to_list() == [rows[i]["clip_id"] for i in (0, 6, 7)]
    by_index = dict(
        zip(failures["index"].to_list(), failures["failure_case"].to_list(), strict=True)
    )
    assert by_index[1] == "banana" and by_index[2] == "8000"


def test_other_row_checks():
    rows = clip_rows(7)
    rows[0]["uri"] = "   "
    rows[1]["speaker"] = ""
    rows[2]["split"] = "holdout"
    rows[3]["num_samples"] = CLIP - 1
    rows[4]["start_s"] = -0.5
    rows[5]["speaker"] = None
    good, failures = validate(clip_frame(rows), SCHEMA)
    found = failures_as_set(failures)
    assert (0, "uri", "not_blank") in found
    assert (1, "speaker", "not_blank") in found
    assert any(i == 2 and col == "split" for i, col, _ in found)
    assert (3, "num_samples", f"equal_to({CLIP})") in found
    assert any(i == 4 and col == "start_s" for i, col, _ in found)
    assert (5, "speaker", "not_nullable") in found
    assert good.height == 1 and good["clip_id"][0] == rows[6]["clip_id"]


def test_structural_problems_raise():
    df = clip_frame(clip_rows(3))
    with pytest.raises(TableSchemaError, match="split"):
        validate(df.drop("split"), SCHEMA)
    with pytest.raises(TableSchemaError, match="sample_rate"):
        validate(df.with_columns(pl.col("sample_rate").cast(pl.Int32)), SCHEMA)


def test_failures_by_row_builds_one_reason_per_row():
    rows = clip_rows(4)
    rows[2]["label"] = "banana"
    rows[2]["snr_db"] = math.inf
    _, failures = validate(clip_frame(rows), SCHEMA)
    summary = failures_by_row(failures)
    assert summary["index"].to_list() == [2]
    assert summary["reason"].to_list() == [SCHEMA_VIOLATION]
    detail = summary["detail"][0]
    assert "label:" in detail and "banana" in detail and "snr_db:finite=inf" in detail
    assert failures_by_row(schemas.empty_failures()).height == 0


def quarantine_frame(reasons: list[str | None]) -> pl.DataFrame:
    n = len(reasons)
    return pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "source": ["demo"] * n,
            "uri": [f"/x/{i}.wav" for i in range(n)],
            "label": ["yes"] * n,
            "speaker": ["s"] * n,
            "reason": reasons,
            "detail": [""] * n,
        },
        schema=dict.fromkeys(
            ("clip_id", "source", "uri", "label", "speaker", "reason", "detail"), pl.Utf8
        ),
    )


def test_quarantine_schema():
    good, failures = validate(quarantine_frame(["clipped", "low_snr"]), quarantine_schema())
    assert good.height == 2 and failures.height == 0
    good, failures = validate(quarantine_frame(["clipped", "", None]), quarantine_schema())
    assert good.height == 1
    assert set(failures["index"].to_list()) == {1, 2}


def mfcc_frame(values: np.ndarray, labels: list[str], ids: list[str] | None = None) -> pl.DataFrame:
    n = values.shape[0]
    return pl.DataFrame(
        {
            "clip_id": ids or [f"m{i}" for i in range(n)],
            "label": labels,
            "split": ["train"] * n,
            "mfcc": pl.Series("mfcc", values),
        }
    )


def test_mfcc_schema():
    n_frames, n_mfcc = 49, 10
    schema = mfcc_table_schema(n_frames, n_mfcc, LABELS)
    values = np.random.default_rng(0).standard_normal((4, n_frames, n_mfcc)).astype(np.float32)
    good, failures = validate(mfcc_frame(values, ["yes", "no", "up", "down"]), schema)
    assert good.height == 4 and failures.height == 0
    values[1, 30, 7] = np.nan
    values[3, 0, 0] = np.inf
    good, failures = validate(
        mfcc_frame(values, ["yes", "cat", "up", "down"], ["a", "b", "c", "a"]), schema
    )
    found = failures_as_set(failures)
    assert (1, "mfcc", "finite_values") in found and (3, "mfcc", "finite_values") in found
    assert any(i == 1 and col == "label" for i, col, _ in found)
    assert (3, "clip_id", "unique") in found
    assert good["clip_id"].to_list() == ["a", "c"]
    wrong_shape = np.zeros((2, n_frames, n_mfcc + 1), dtype=np.float32)
    with pytest.raises(TableSchemaError):
        validate(mfcc_frame(wrong_shape, ["yes", "no"]), schema)


def test_a_lazy_table_validated_a_chunk_at_a_time_fails_the_same_rows():
    """validate_lazy: array columns chunk by chunk (row positions kept), scalar columns over the
    whole table, so a duplicate clip id in another chunk is still caught."""
    n_frames, n_mfcc = 49, 10
    schema = mfcc_table_schema(n_frames, n_mfcc, LABELS)
    values = np.random.default_rng(1).standard_normal((9, n_frames, n_mfcc)).astype(np.float32)
    values[7, 3, 3] = np.inf
    labels = ["yes", "no", "up", "down", "yes", "cat", "no", "up", "down"]
    ids = [f"c{i}" for i in range(8)] + ["c0"]  # the duplicate lies two chunks away
    frame = mfcc_frame(values, labels, ids)
    _, whole = validate(frame, schema)
    rows, chunked = schemas.validate_lazy(frame.lazy(), schema, chunk_rows=3)
    assert rows == 9
    assert failures_as_set(chunked) == failures_as_set(whole)
    assert {(7, "mfcc", "finite_values"), (8, "clip_id", "unique")} <= failures_as_set(chunked)
    assert any(i == 5 and col == "label" for i, col, _ in failures_as_set(chunked))
    clean = mfcc_frame(values[:4], labels[:4])
    rows, failures = schemas.validate_lazy(clean.lazy(), schema, chunk_rows=2)
    assert rows == 4 and failures.height == 0
