"""The negative material as windows: sampling with bounded memory, mining, FA/h, and a mining
round that lowers the first round's false accepts on held-out material."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from kws_assets.core.model.embedding_head import train_head
from kws_assets.core.model.negative_windows import (
    FEATURES,
    NEGATIVES_SCHEMA,
    WindowSettings,
    false_accepts,
    mine_windows,
    recordings,
    sample_windows,
    split_hours,
    train_with_negatives,
    windows_of,
    with_negatives,
)
from kws_assets.core.model.training import predict_logits
from kws_assets.settings import HeadNegativeSettings, TrainSettings

DIM = 4
N = 3


def table_of(recs: list[tuple[str, str, np.ndarray]], seconds: float = 60.0) -> pl.LazyFrame:
    return pl.DataFrame(
        {
            "segment_id": [r[0] for r in recs],
            "split": [r[1] for r in recs],
            "kind": ["speech"] * len(recs),
            "seconds": [seconds] * len(recs),
            "frames": [r[2].shape[0] for r in recs],
            FEATURES: [r[2].reshape(-1) for r in recs],
            "label": ["_unknown_"] * len(recs),
        },
        schema=NEGATIVES_SCHEMA,
    ).lazy()


def counting(frames: int, start: float) -> np.ndarray:
    """Frames whose every value is its position (plus ``start``): a window says where it is from."""
    return np.repeat(np.arange(frames, dtype=np.float32)[:, None] + start, DIM, axis=1)


def test_windows_are_consecutive_frames_of_one_recording():
    frames = counting(10, 0)
    view = windows_of(frames, N)
    assert view.shape == (8, N, DIM)
    np.testing.assert_array_equal(view[5][:, 0], [5, 6, 7])
    assert windows_of(counting(2, 0), N).shape == (0, N, DIM)


def test_sampled_windows_come_from_the_split_asked_and_read_a_few_recordings_at_a_time():
    recs = [(f"t{i}", "train", counting(20, 1000 * i)) for i in range(30)]
    recs += [("h0", "heldout", counting(20, -5000))]
    table = table_of(recs)
    drawn = sample_windows(table, "train", 500, N, DIM, np.random.default_rng(0))
    assert drawn.shape == (500, N, DIM)
    steps = np.diff(drawn[:, :, 0], axis=1)
    assert np.all(steps == 1)  # consecutive frames, never across two recordings
    assert drawn.min() >= 0  # nothing of the held-out recording
    assert len({int(w[0, 0]) // 1000 for w in drawn}) > 20  # spread over the recordings
    # the reader never holds more than its chunk: recordings come back one by one, in order
    assert [r[0] for r in recordings(table, "train", DIM, read_rows=4)] == [
        f"t{i}" for i in range(30)
    ]
    assert split_hours(table, "train") == pytest.approx(30 / 60)
    assert sample_windows(table, "heldout", 0, N, DIM, np.random.default_rng(0)).shape[0] == 0


def marker_scorer(marker: float):
    """Keyword probability 0.9 for windows whose middle frame holds ``marker``, else 0.05."""

    def score(windows: np.ndarray) -> np.ndarray:
        hit = np.isclose(windows[:, N // 2, 0], marker)
        kw = np.where(hit, 0.9, 0.05)
        return np.stack([kw, 1 - kw], axis=1).astype(np.float32)  # [keyword, _unknown_]

    return score


def test_mining_keeps_the_local_peaks_where_the_model_fires_up_to_the_cap():
    frames = np.zeros((200, DIM), np.float32)
    frames[[20, 21, 90, 150], 0] = 7.0  # 20 and 21 are one place
    table = table_of([("a", "train", frames)])
    mined = mine_windows(table, "train", marker_scorer(7.0), [0], N, DIM, 0.5, 10, 3)
    assert mined.found == 3 and mined.scored == 198
    assert np.all(np.isclose(mined.windows[:, N // 2, 0], 7.0))
    capped = mine_windows(table, "train", marker_scorer(7.0), [0], N, DIM, 0.5, 2, 3)
    assert len(capped.windows) == 2 and capped.found == 3


def test_false_accepts_count_events_per_hour_with_refractory():
    frames = np.zeros((400, DIM), np.float32)
    frames[[50, 52, 300], 0] = 7.0  # 50 and 52 fall in one refractory period
    table = table_of([("h", "heldout", frames)], seconds=1800.0)
    fa = false_accepts(table, "heldout", marker_scorer(7.0), [0], N, DIM, 0.5, 1, 10)
    assert fa.events == 2 and fa.hours == pytest.approx(0.5) and fa.per_hour == pytest.approx(4)


def test_extra_windows_join_an_in_memory_split_and_a_streamed_one():
    x = np.ones((5, N, DIM), np.float32)
    y = np.zeros(5, np.int64)
    extra = np.zeros((7, N, DIM), np.float32)
    joined = with_negatives({"x_train": x, "y_train": y, "x_val": x, "y_val": y}, extra, 2, 0)
    assert joined["x_train"].shape[0] == 12 and list(joined["y_train"][5:]) == [2] * 7

    def batches(epoch: int):
        for i in range(0, 5, 2):
            yield x[i : i + 2], y[i : i + 2], np.arange(i, min(i + 2, 5))

    streamed = with_negatives(
        {"x_train": None, "train_batches": batches, "train_class_counts": [5, 0, 0]}, extra, 2, 0
    )
    seen = list(streamed["train_batches"](1))
    labels = np.concatenate([b[1] for b in seen])
    assert sorted(labels.tolist()) == [0] * 5 + [2] * 7
    assert streamed["train_class_counts"] == [5, 0, 7]


def test_a_mining_round_lowers_the_false_accepts_of_the_first_round_on_held_out_material():
    """A keyword is two frames at +1 on every dimension; the material holds quieter copies
    (+0.5) that the clips never show.  Round 1 (clips and a few random windows) fires on them;
    the mined round, warm-started from round 1's head for a third of its epochs (as the
    speech_embedding family trains it), fires on under half as many held-out ones."""
    rng = np.random.default_rng(0)
    dim, n = 8, 4

    def clips(count: int, keyword: bool) -> np.ndarray:
        x = rng.normal(0, 0.3, size=(count, n, dim)).astype(np.float32)
        if keyword:
            x[:, 1:3, :] += 1.0
        return x

    x_train = np.concatenate([clips(100, True), clips(100, False)])
    y_train = np.array([0] * 100 + [1] * 100)
    x_val = np.concatenate([clips(30, True), clips(30, False)])
    y_val = np.array([0] * 30 + [1] * 30)

    def material(split: str, count: int) -> list[tuple[str, str, np.ndarray]]:
        recs = []
        for i in range(count):
            frames = rng.normal(0, 0.3, size=(300, dim)).astype(np.float32)
            for at in rng.choice(np.arange(5, 290, 12), size=12, replace=False):
                frames[at : at + 2, :] += 0.5  # a confuser: a quiet keyword
            recs.append((f"{split}{i}", split, frames))
        return recs

    table = table_of(material("train", 4) + material("heldout", 3), seconds=24.0)
    settings = HeadNegativeSettings(
        window_ratio=0.15, mining_rounds=1, mining_threshold=0.5, mined_max=400, mined_repeat=4
    )
    train = TrainSettings(
        max_epochs=12, min_epochs=12, batch_size=32, learning_rate=0.003, threads=1
    )
    labels = ["kw", "_unknown_"]

    previous_models: list[object] = []

    def fit(extra: np.ndarray, previous):
        previous_models.append(previous)
        inputs = with_negatives(
            {"x_train": x_train, "y_train": y_train, "x_val": x_val, "y_val": y_val}, extra, 1, 0
        )
        return train_head(
            **inputs,
            labels=labels,
            train_settings=train if previous is None else train.within(4),
            width=32,
            augment=None,
            initial_state=None if previous is None else previous.model.state_dict(),
        )

    def scorer(result):
        def score(w: np.ndarray) -> np.ndarray:
            logits = predict_logits(result.model, w)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        return score

    windows = WindowSettings(n, dim, 0.08, 1, 1.0)
    _, rounds = train_with_negatives(
        fit, scorer, table, settings, labels, windows, 0, lambda _m: None, len(y_train)
    )
    assert previous_models[0] is None and previous_models[1] is not None  # round 2 warm
    first, second = rounds[0].heldout, rounds[1].heldout
    assert first is not None and second is not None
    mined = rounds[0].mined_next
    assert mined is not None and mined.found > 0
    assert rounds[1].mined_windows == 4 * len(mined.windows)
    assert first.events >= 10, first  # the confusers fire the first round
    assert second.events <= first.events / 2, (first, second)
