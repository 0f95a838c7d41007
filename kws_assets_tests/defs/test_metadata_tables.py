"""Native UI tables (``MetadataValue.table``): schema types inferred, every cell a value the UI can
parse and shows as plain text, and the metadata the assets emit is one of them."""

from __future__ import annotations

import json
import math

import dagster as dg
import numpy as np
import polars as pl
import pytest

from kws_assets.lib.metadata import (
    CONFUSION_CORNER,
    confusion_table,
    label_counts,
    label_counts_table,
    metadata_table,
)

HOSTILE = "[x](http://e.vil)\n![i](http://e.vil/a.png) <b>bold</b>"


def schema_of(value: dg.TableMetadataValue) -> dict[str, str]:
    return {c.name: c.type for c in value.schema.columns}


def records_of(value: dg.TableMetadataValue) -> list[dict]:
    return [dict(r.data) for r in value.records]


def test_types_come_from_the_polars_dtypes():
    frame = pl.DataFrame(
        {
            "label": ["yes", "no"],
            "clips": [3, 4],
            "recall": [0.123456, float("nan")],
            "passed": [True, False],
            "when": pl.Series([None, None], dtype=pl.Date),
        }
    )
    table = metadata_table(frame)
    assert isinstance(table, dg.TableMetadataValue)
    assert schema_of(table) == {
        "label": "string",
        "clips": "int",
        "recall": "float",
        "passed": "bool",
        "when": "string",
    }
    first, second = records_of(table)
    assert first == {"label": "yes", "clips": 3, "recall": 0.1235, "passed": True, "when": None}
    assert second["recall"] is None  # NaN would make the UI drop the row ("could not parse")
    assert isinstance(first["clips"], int) and not isinstance(first["clips"], bool)


def test_types_come_from_the_values_of_a_list_of_dicts():
    rows = [
        {"set": "real", "accuracy": 1, "clips": np.int64(5), "ok": True, "tags": ["a"]},
        {"set": "tts", "accuracy": 0.5, "clips": 7, "ok": False, "extra": "x"},
    ]
    table = metadata_table(rows)
    assert schema_of(table) == {
        "set": "string",
        "accuracy": "float",  # an int and a float: float
        "clips": "int",  # numpy scalars count as the Python value they hold
        "ok": "bool",
        "tags": "string",  # a list is shown as JSON text
        "extra": "string",
    }
    first, second = records_of(table)
    assert first["accuracy"] == 1.0 and isinstance(first["accuracy"], float)
    assert first["clips"] == 5 and type(first["clips"]) is int
    assert first["tags"] == '["a"]' and first["extra"] is None
    assert second["tags"] is None and second["extra"] == "x"
    # the records are what the UI parses: every one must be valid JSON
    for record in table.records:
        json.loads(json.dumps(record.data, allow_nan=False))


def test_mixed_values_become_text_and_columns_can_be_chosen():
    table = metadata_table([{"a": 1, "b": "x"}, {"a": "two", "b": "y"}], columns=["b", "a"])
    assert [c.name for c in table.schema.columns] == ["b", "a"]
    assert schema_of(table)["a"] == "string"
    assert records_of(table) == [{"b": "x", "a": "1"}, {"b": "y", "a": "two"}]
    with pytest.raises(ValueError, match="columns="):
        metadata_table([])
    empty = metadata_table([], columns=["label", "clips"])
    assert empty.records == [] and [c.name for c in empty.schema.columns] == ["label", "clips"]


def test_corpus_text_is_one_plain_line():
    table = metadata_table(pl.DataFrame({"speaker": [HOSTILE, "x" * 1000], "clips": [1, 2]}))
    hostile, long = (r["speaker"] for r in records_of(table))
    assert "\n" not in hostile and hostile.startswith("[x](http://e.vil) ![i]")
    assert len(long) < 400 and "chars]" in long


def test_label_counts_per_label_and_per_split():
    clips = pl.DataFrame(
        {
            "label": ["yes", "yes", "no", "_unknown_", "yes"],
            "split": ["train", "val", "train", "test", "train"],
        }
    )
    assert records_of(label_counts_table(clips)) == [
        {"label": "_unknown_", "clips": 1},
        {"label": "no", "clips": 1},
        {"label": "yes", "clips": 3},
    ]
    by_split = label_counts_table(clips, by="split")
    assert [c.name for c in by_split.schema.columns] == ["label", "test", "train", "val"]
    assert set(schema_of(by_split).values()) == {"string", "int"}
    assert records_of(by_split)[2] == {"label": "yes", "test": 0, "train": 2, "val": 1}
    assert label_counts(clips.clear()).columns == ["label", "clips"]
    assert metadata_table(label_counts(clips.clear(), by="split")).records == []


def test_confusion_table_rows_are_true_labels():
    table = confusion_table(["_silence_", "yes"], [[3, 1], [0, 4]])
    assert [c.name for c in table.schema.columns] == [CONFUSION_CORNER, "_silence_", "yes"]
    assert records_of(table) == [
        {CONFUSION_CORNER: "_silence_", "_silence_": 3, "yes": 1},
        {CONFUSION_CORNER: "yes", "_silence_": 0, "yes": 4},
    ]
    with pytest.raises(ValueError, match="2 rows of 2"):
        confusion_table(["a", "b"], [[1, 2]])


def test_floats_keep_four_significant_digits():
    (record,) = records_of(metadata_table([{"v": 123456.7, "w": 0.000123456, "z": math.inf}]))
    assert record == {"v": 123500.0, "w": 0.0001235, "z": None}
