"""Feature tables read a chunk at a time: streaming training batches (every row once per epoch,
reproducible shuffles, class balance, the rows held bounded by the buffer and one chunk however
long the table is), a model's splits (train streamed above a size), norm stats, logits and ids in
table order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from kws_assets.core.features.loader import (
    StreamingSplit,
    collect_splits,
    split_clip_ids,
    streamed_norm_stats,
    table_logits,
    training_data,
)
from kws_assets.core.features.mfcc import compute_norm_stats
from kws_assets.settings import TrainSettings

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
    return [int(r) for x, *_ in batches for r in x[:, 0, 0]]


def test_an_epoch_yields_every_train_row_once_with_its_label(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 600, 40)
    loader = StreamingSplit(
        path, LABELS, "train", batch_size=16, shuffle_buffer=64, seed=3, chunk_rows=40
    )
    batches = list(loader.epoch(0))
    rows = _rows_of(batches)
    table = pl.read_parquet(path).with_row_index("row")
    train = table.filter(pl.col("split") == "train")
    assert sorted(rows) == train["row"].to_list()
    label_of = dict(zip(train["row"].to_list(), train["label"].to_list(), strict=True))
    for x, y, _ in batches:
        assert x.dtype == np.float32 and x.shape[1:] == SHAPE and y.dtype == np.int64
        assert [LABELS[i] for i in y] == [label_of[int(r)] for r in x[:, 0, 0]]
    assert rows != sorted(rows)  # shuffled
    assert loader.rows == train.height


def test_shuffles_are_reproducible_per_seed_and_differ_between_epochs(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 300, 25)

    def order(seed: int, epoch: int) -> list[int]:
        return _rows_of(
            StreamingSplit(
                path, LABELS, "train", seed=seed, batch_size=8, shuffle_buffer=32, chunk_rows=25
            ).epoch(epoch)
        )

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)


def test_rows_held_stay_bounded_when_the_table_grows(tmp_path) -> None:
    held = {}
    for rows in (500, 4000):
        path = _table(tmp_path / f"f{rows}.parquet", rows, 50)
        loader = StreamingSplit(
            path, LABELS, "train", batch_size=16, shuffle_buffer=100, chunk_rows=50
        )
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
            chunk_rows=100,
        )
        return np.bincount(np.concatenate([y for _, y, _ in loader.epoch(0)]), minlength=3)

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


def _linear(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(SHAPE)), 3))


def test_streamed_norm_stats_equal_the_in_memory_ones(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 700, 64)
    frame = pl.read_parquet(path)
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, size=(frame.height, *SHAPE)).astype(np.float32)
    frame = frame.with_columns(pl.Series("mfcc", values, dtype=pl.Array(pl.Float32, SHAPE)))
    train = frame.filter(pl.col("split") == "train")["mfcc"].to_numpy()
    mean, std = compute_norm_stats(train)
    got_mean, got_std = streamed_norm_stats(frame.lazy(), LABELS, "train", chunk_rows=50)
    assert got_mean == pytest.approx(mean, rel=1e-6)
    assert got_std == pytest.approx(std, rel=1e-6)
    with pytest.raises(ValueError, match="no rows"):
        streamed_norm_stats(frame.lazy(), LABELS, "test")


def test_training_data_streams_a_large_train_split_and_reports_every_row(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 600, 40)
    table = pl.read_parquet(path)
    model = _linear()
    held = training_data(path, LABELS, TrainSettings(stream_above_rows=10_000), chunk_rows=40)
    streamed = training_data(
        pl.scan_parquet(path),
        LABELS,
        TrainSettings(stream_above_rows=100, shuffle_buffer=50, batch_size=16),
        chunk_rows=40,
    ).normalised(lambda x: x * 2.0)
    assert not held.streamed and streamed.streamed
    assert set(held.held) == {"train", "val", "test"} and set(streamed.held) == {"val", "test"}
    train_rows = table.filter(pl.col("split") == "train").height
    assert held.rows("train") == streamed.rows("train") == train_rows
    assert streamed.rows("val") == table.filter(pl.col("split") == "val").height
    # the train split in table order, chunk by chunk, through the normaliser
    y_held, logits_held = held.labels_and_logits(model, "train")
    y_streamed, logits_streamed = streamed.labels_and_logits(
        torch.nn.Sequential(_Halve(), model), "train"
    )
    assert np.array_equal(y_held, y_streamed)
    assert np.allclose(logits_held, logits_streamed, atol=1e-5)
    assert held.report(model, "train") == streamed.report(
        torch.nn.Sequential(_Halve(), model), "train"
    )
    assert held.report(model, "test") is None  # no test rows in this table
    inputs = streamed.train_inputs()
    assert inputs["x_train"] is None and inputs["train_class_counts"] == [
        streamed.stream.counts[label] for label in LABELS
    ]
    batches = list(inputs["train_batches"](0))
    rows = np.concatenate([r for *_, r in batches])
    assert sorted(rows.tolist()) == list(range(train_rows))  # each row's position in the split
    train = table.filter(pl.col("split") == "train")["mfcc"].to_numpy()
    for x, _, r in batches:
        assert np.array_equal(x, train[r] * 2.0)  # normalised, and matching its position


class _Halve(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / 2.0


def test_table_logits_clip_ids_and_collected_splits_follow_table_order(tmp_path) -> None:
    path = _table(tmp_path / "f.parquet", 130, 16)
    table = pl.read_parquet(path)
    model = _linear(1)
    ids, logits = table_logits(model, path, chunk_rows=16)
    assert ids == table["clip_id"].to_list()
    with torch.inference_mode():
        expected = model(torch.from_numpy(table["mfcc"].to_numpy().astype(np.float32))).numpy()
    assert np.allclose(logits, expected, atol=1e-5)
    val = table.filter(pl.col("split") == "val")
    assert split_clip_ids(path, "val") == val["clip_id"].to_list()
    assert collect_splits(path, ["val"], ["clip_id", "label"]).equals(
        val.select("clip_id", "label")
    )
    assert collect_splits(table, ["nope"]).height == 0
