"""Streaming training batches: every row once per epoch, reproducible shuffles, class balance,
and the rows held bounded by the buffer and one row group however long the table is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kws_assets.core.model.feature_loader import StreamingSplit

LABELS = ["_silence_", "_unknown_", "yes"]
SHAPE = (3, 2)


def _table(path: Path, rows: int, row_group: int, yes_share: float = 1 / 3) -> Path:
    """A feature table whose features encode the row number (x[..., 0, 0] == row)."""
    rng = np.random.default_rng(rows)
    features = np.zeros((rows, *SHAPE), dtype=np.float32)
    features[:, 0, 0] = np.arange(rows)
    draw = rng.random(rows)
    labels = np.where(draw < yes_share, "yes", np.where(draw < 0.8, "_unknown_", "_silence_"))
    split = np.where(np.arange(rows) % 5 == 0, "val", "train")
    pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(rows)],
            "label": labels,
            "split": split,
            "mfcc": pl.Series(features, dtype=pl.Array(pl.Float32, SHAPE)),
        }
    ).write_parquet(path, row_group_size=row_group)
    return path


def _rows_of(batches) -> list[int]:
    return [int(r) for x, _ in batches for r in x[:, 0, 0]]


def test_an_epoch_yields_every_train_row_once_with_its_label(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 600, 40)
    loader = StreamingSplit(path, LABELS, "train", batch_size=16, shuffle_buffer=64, seed=3)
    batches = list(loader.epoch(0))
    rows = _rows_of(batches)
    table = pl.read_parquet(path).with_row_index("row")
    train = table.filter(pl.col("split") == "train")
    assert sorted(rows) == train["row"].to_list()
    label_of = dict(zip(train["row"].to_list(), train["label"].to_list(), strict=True))
    for x, y in batches:
        assert x.dtype == np.float32 and x.shape[1:] == SHAPE and y.dtype == np.int64
        assert [LABELS[i] for i in y] == [label_of[int(r)] for r in x[:, 0, 0]]
    assert rows != sorted(rows)  # shuffled
    assert loader.rows == train.height


def test_shuffles_are_reproducible_per_seed_and_differ_between_epochs(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 300, 25)

    def order(seed: int, epoch: int) -> list[int]:
        return _rows_of(
            StreamingSplit(path, LABELS, "train", seed=seed, batch_size=8, shuffle_buffer=32).epoch(
                epoch
            )
        )

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)


def test_rows_held_stay_bounded_when_the_table_grows(tmp_path) -> None:
    held = {}
    for rows in (500, 4000):
        path = _table(tmp_path / f"f{rows}.parquet", rows, 50)
        loader = StreamingSplit(path, LABELS, "train", batch_size=16, shuffle_buffer=100)
        assert len(_rows_of(loader.epoch(0))) == loader.rows
        held[rows] = loader.stats.max_rows_held
        assert loader.stats.rows_read == rows
    # the shuffle buffer + one batch + the decoded row group, never the table
    assert held[4000] <= 100 + 16 + 2 * 50
    assert held[4000] <= held[500] + 50


def test_balance_oversamples_the_small_classes_up_to_max_repeat(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 3000, 100, yes_share=0.05)

    def epoch_counts(max_repeat: int) -> np.ndarray:
        loader = StreamingSplit(
            path,
            LABELS,
            "train",
            batch_size=32,
            shuffle_buffer=200,
            balance=True,
            max_repeat=max_repeat,
        )
        return np.bincount(np.concatenate([y for _, y in loader.epoch(0)]), minlength=3)

    natural = StreamingSplit(path, LABELS, "train").counts
    assert natural["yes"] < natural["_unknown_"] / 5  # "yes" is rare in the table...
    balanced = epoch_counts(max_repeat=50)
    assert balanced.min() > 0.9 * balanced.max()  # ...and as common as the others balanced
    capped = epoch_counts(max_repeat=2)
    assert capped[2] == pytest.approx(2 * natural["yes"], rel=0.1)  # at most 2 copies each


def test_unknown_labels_and_missing_columns_are_refused(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 50, 10)
    with pytest.raises(ValueError, match="labels the model does not know"):
        StreamingSplit(path, ["yes"], "train")
    with pytest.raises(ValueError, match=r"lacks the columns \['embedding'\]"):
        StreamingSplit(path, LABELS, "train", column="embedding")
