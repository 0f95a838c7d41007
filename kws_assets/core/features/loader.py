"""Feature tables read a chunk of rows at a time: shuffled training batches, and whole splits
passed over in table order, so a training step's peak memory does not grow with the table.

A *source* is a feature table (``label``, ``split``, ``clip_id`` and an array column: ``mfcc`` or
``embedding``) as a ``pl.LazyFrame`` (the IO manager scans a stored table lazily) or a Parquet
path.  Rows are read ``chunk_rows`` at a time by position (``LazyFrame.slice``: a Parquet scan
reads only the row groups a chunk touches) and filtered to the split in memory.

:class:`StreamingSplit` keeps at most ``shuffle_buffer`` rows plus the chunk being read, and
yields shuffled ``(x, y, rows)`` batches (``rows``: each row's position in the split, in table
order, so per-row extras such as a teacher's logits can be looked up); the number of rows it ever
held is counted (``max_rows_held``), so a test can check the bound without timing anything.

Shuffling is two-level, as with any streaming loader: the chunk order is permuted per epoch and
rows are drawn at random from the buffer.  Everything is drawn from a generator seeded by
``(seed, epoch)``, so an epoch's batches are the same on every run.  ``balance=True`` oversamples
the smaller classes (each row of class ``c`` is repeated ``n_max / n_c`` times in expectation, at
most ``max_repeat``), computed from one pass over the label column.

:func:`split_chunks` passes over one split in table order (prediction, reports, teacher logits);
:func:`streamed_norm_stats` computes the same per-coefficient mean and std as
``features.compute_norm_stats`` in one pass; :func:`collect_splits` loads only the rows of the
splits asked for; :func:`training_data` gives a model's splits (val and test in memory, train in
memory up to ``train.stream_above_rows`` rows, streamed beyond).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from torch import nn

from kws_assets.core.features.mfcc import COLUMN as MFCC_COLUMN
from kws_assets.core.features.mfcc import MIN_STD
from kws_assets.core.features.table import split_arrays
from kws_assets.core.model.training import EvalReport, classification_report, predict_logits
from kws_assets.core.storage.parquet_stream import ROW_GROUP_ROWS
from kws_assets.settings import TrainSettings

DEFAULT_SHUFFLE_BUFFER: int = TrainSettings.model_fields["shuffle_buffer"].default
"""Rows drawn from at random (``train.shuffle_buffer``): enough to mix the classes of a few
chunks."""
DEFAULT_MAX_REPEAT = 8
"""The most copies of one row class balancing makes in an epoch (a rare class stays rare-ish
rather than one clip being seen a hundred times)."""
DEFAULT_CHUNK_ROWS = ROW_GROUP_ROWS
"""Rows read at once: one Parquet row group of the feature tables the features step writes."""

FeatureSource = pl.LazyFrame | pl.DataFrame | str | Path


def as_lazy(source: FeatureSource) -> pl.LazyFrame:
    """A feature table as a lazy frame (a path is scanned, not read)."""
    if isinstance(source, pl.LazyFrame):
        return source
    if isinstance(source, pl.DataFrame):
        return source.lazy()
    return pl.scan_parquet(Path(source))


def collect_splits(
    source: FeatureSource, splits: Sequence[str], columns: Sequence[str] | None = None
) -> pl.DataFrame:
    """The rows of ``splits`` only (all columns, or ``columns``), in table order."""
    frame = as_lazy(source).filter(pl.col("split").is_in(list(splits)))
    return (frame if columns is None else frame.select(list(columns))).collect()


def _require_columns(frame: pl.LazyFrame, needed: set[str], column: str) -> None:
    missing = needed - set(frame.collect_schema().names())
    if missing:
        raise ValueError(
            f"the feature table lacks the columns {sorted(missing)}: pass the table written by "
            f"the features step (mfcc or embedding), and column= its array column ({column!r})"
        )


@dataclass(frozen=True)
class SplitChunk:
    """One chunk of a split's rows, in table order."""

    x: np.ndarray
    """Features ``[n, ...]`` float32."""
    y: np.ndarray
    """Class indices ``[n]`` int64."""
    rows: np.ndarray
    """Positions of these rows within the split (0 = the split's first row in the table)."""
    clip_ids: list[str]


class _SplitReader:
    """Reads one split of a feature table a chunk of table rows at a time."""

    def __init__(
        self,
        source: FeatureSource,
        labels: Sequence[str],
        split: str,
        column: str,
        chunk_rows: int,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be at least 1")
        self.frame = as_lazy(source)
        _require_columns(self.frame, {column, "label", "split"}, column)
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.split, self.column, self.chunk_rows = split, column, chunk_rows
        meta = self.frame.select("label", "split").collect()
        in_split = (meta["split"] == split).to_numpy()
        self.table_rows = meta.height
        # position within the split of the first split row of each chunk
        starts = np.concatenate([[0], np.cumsum(in_split)])
        self.chunk_offsets = starts[:: self.chunk_rows][: self.n_chunks]
        counts = dict(meta.filter(pl.col("split") == split).group_by("label").len().iter_rows())
        unknown = set(counts) - set(self.index)
        if unknown:
            raise ValueError(
                f"feature table has labels the model does not know: {sorted(unknown)} "
                f"(labels: {self.labels})"
            )
        self.counts = {label: int(counts.get(label, 0)) for label in self.labels}

    @property
    def n_chunks(self) -> int:
        return -(-self.table_rows // self.chunk_rows)

    def chunk(self, index: int, with_ids: bool = False) -> tuple[SplitChunk, int]:
        """The split's rows of table chunk ``index``, and the table rows decoded for it."""
        columns = [self.column, "label", "split", *(["clip_id"] if with_ids else [])]
        table = self.frame.slice(index * self.chunk_rows, self.chunk_rows).select(columns).collect()
        rows = table.filter(pl.col("split") == self.split)
        x = np.array(rows[self.column].to_numpy(), dtype=np.float32)  # writable, for torch
        y = np.array([self.index[label] for label in rows["label"].to_list()], dtype=np.int64)
        positions = self.chunk_offsets[index] + np.arange(rows.height, dtype=np.int64)
        ids = rows["clip_id"].to_list() if with_ids else []
        return SplitChunk(x, y, positions, ids), table.height


def split_chunks(
    source: FeatureSource,
    labels: Sequence[str],
    split: str,
    *,
    column: str = MFCC_COLUMN,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    with_ids: bool = False,
) -> Iterator[SplitChunk]:
    """One split of a feature table, a chunk at a time, in table order (chunks without rows of
    the split are skipped)."""
    reader = _SplitReader(source, labels, split, column, chunk_rows)
    for index in range(reader.n_chunks):
        chunk, _ = reader.chunk(index, with_ids=with_ids)
        if chunk.y.size:
            yield chunk


def streamed_norm_stats(
    source: FeatureSource,
    labels: Sequence[str],
    split: str,
    *,
    column: str = MFCC_COLUMN,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[list[float], list[float]]:
    """``features.compute_norm_stats`` of one split, accumulated a chunk at a time (float64 sums
    of values and squares per coefficient)."""
    total = squares = None
    count = 0
    for chunk in split_chunks(source, labels, split, column=column, chunk_rows=chunk_rows):
        flat = chunk.x.astype(np.float64).reshape(-1, chunk.x.shape[-1])
        total = flat.sum(axis=0) if total is None else total + flat.sum(axis=0)
        squares = (flat**2).sum(axis=0) if squares is None else squares + (flat**2).sum(axis=0)
        count += flat.shape[0]
    if total is None or squares is None:
        raise ValueError(f"the {split!r} split of the feature table has no rows")
    mean = total / count
    std = np.maximum(np.sqrt(np.maximum(squares / count - mean**2, 0.0)), MIN_STD)
    return mean.tolist(), std.tolist()


@dataclass
class LoaderStats:
    rows_read: int = 0
    batches: int = 0
    max_rows_held: int = 0
    """Most rows held at once: the shuffle buffer plus the decoded chunk."""


class StreamingSplit:
    """One split of a feature table as shuffled training batches, read a chunk at a time."""

    def __init__(
        self,
        source: FeatureSource,
        labels: Sequence[str],
        split: str,
        *,
        column: str = MFCC_COLUMN,
        batch_size: int = 64,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        seed: int = 0,
        balance: bool = False,
        max_repeat: int = DEFAULT_MAX_REPEAT,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> None:
        if batch_size < 1 or shuffle_buffer < 1 or max_repeat < 1:
            raise ValueError("batch_size, shuffle_buffer and max_repeat must be at least 1")
        self.reader = _SplitReader(source, labels, split, column, chunk_rows)
        self.labels = self.reader.labels
        self.split, self.column = split, column
        self.batch_size, self.shuffle_buffer = batch_size, shuffle_buffer
        self.seed, self.balance, self.max_repeat = seed, balance, max_repeat
        self.counts = self.reader.counts
        self.stats = LoaderStats()

    @property
    def rows(self) -> int:
        """Rows of the split (before balancing)."""
        return sum(self.counts.values())

    def repeat_rates(self) -> np.ndarray:
        """Expected copies per row of each class in an epoch (1 without balancing)."""
        n = np.array([self.counts[label] for label in self.labels], dtype=np.float64)
        if not self.balance or not n.any():
            return np.ones(len(self.labels))
        rates = np.where(n > 0, n.max() / np.maximum(n, 1), 1.0)
        return np.minimum(rates, self.max_repeat)

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The batches of one epoch: ``(x [b, ...] float32, y [b] int64, rows [b] int64)``,
        ``rows`` each row's position in the split (see the module docstring)."""
        rng = np.random.default_rng([self.seed, epoch])
        rates = self.repeat_rates()
        buffer_x: np.ndarray | None = None
        buffer_y = np.empty(0, dtype=np.int64)
        buffer_r = np.empty(0, dtype=np.int64)
        for index in rng.permutation(self.reader.n_chunks):
            chunk, decoded = self.reader.chunk(int(index))
            x, y, r = chunk.x, chunk.y, chunk.rows
            self.stats.rows_read += decoded
            if self.balance and y.size:
                rate = rates[y]
                copies = np.floor(rate).astype(np.int64)
                copies += rng.random(y.size) < (rate - copies)
                x, y, r = np.repeat(x, copies, axis=0), np.repeat(y, copies), np.repeat(r, copies)
            if y.size == 0:
                continue
            buffer_x = x if buffer_x is None else np.concatenate([buffer_x, x])
            buffer_y, buffer_r = np.concatenate([buffer_y, y]), np.concatenate([buffer_r, r])
            self._held(buffer_y.size + decoded)
            while buffer_y.size >= self.shuffle_buffer + self.batch_size:
                take = rng.choice(buffer_y.size, size=self.batch_size, replace=False)
                keep = np.ones(buffer_y.size, dtype=bool)
                keep[take] = False
                self.stats.batches += 1
                yield buffer_x[take], buffer_y[take], buffer_r[take]
                buffer_x, buffer_y, buffer_r = buffer_x[keep], buffer_y[keep], buffer_r[keep]
        if buffer_x is None:
            return
        order = rng.permutation(buffer_y.size)
        for start in range(0, order.size, self.batch_size):
            take = order[start : start + self.batch_size]
            self.stats.batches += 1
            yield buffer_x[take], buffer_y[take], buffer_r[take]

    def _held(self, rows: int) -> None:
        self.stats.max_rows_held = max(self.stats.max_rows_held, rows)


# ----------------------------------------------------------------------------- a model's splits


Normaliser = Callable[[np.ndarray], np.ndarray]


def _identity(x: np.ndarray) -> np.ndarray:
    return x


@dataclass
class TrainingData:
    """What training a model needs of a feature table: the validation and test splits in memory,
    the train split in memory or (:attr:`stream`) streamed, all through one normaliser."""

    labels: list[str]
    held: dict[str, tuple[np.ndarray, np.ndarray]]
    """Normalised ``(x, y)`` per split held in memory (val and test; train unless streamed)."""
    normalise: Normaliser
    stream: StreamingSplit | None = None

    @property
    def streamed(self) -> bool:
        return self.stream is not None

    def rows(self, split: str) -> int:
        if split in self.held:
            return len(self.held[split][1])
        return self.stream.rows if self.stream is not None and split == self.stream.split else 0

    def train_inputs(self) -> dict[str, Any]:
        """The train and val splits as ``training.train_model`` keywords: ``x_val``/``y_val``
        and ``x_train``/``y_train``, or ``train_batches`` (normalised batches with their split
        rows) and ``train_class_counts``."""
        val = {"x_val": self.held["val"][0], "y_val": self.held["val"][1]}
        if self.stream is None:
            x, y = self.held["train"]
            return {"x_train": x, "y_train": y, **val}
        stream, normalise = self.stream, self.normalise

        def batches(epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
            for x, y, rows in stream.epoch(epoch):
                yield normalise(x), y, rows

        return {
            **val,
            "x_train": None,
            "y_train": None,
            "train_batches": batches,
            "train_class_counts": [stream.counts[label] for label in stream.labels],
        }

    def labels_and_logits(self, model: nn.Module, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(y, logits)`` of a model over one split, in table order (streamed chunk by chunk)."""
        if split in self.held:
            x, y = self.held[split]
            return y, predict_logits(model, x)
        if self.stream is None or split != self.stream.split:
            return np.empty(0, dtype=np.int64), np.empty((0, len(self.labels)), np.float32)
        reader = self.stream.reader
        ys, logits = [], []
        for chunk in split_chunks(
            reader.frame, self.labels, split, column=reader.column, chunk_rows=reader.chunk_rows
        ):
            ys.append(chunk.y)
            logits.append(predict_logits(model, self.normalise(chunk.x)))
        if not ys:
            return np.empty(0, dtype=np.int64), np.empty((0, len(self.labels)), np.float32)
        return np.concatenate(ys), np.concatenate(logits)

    def normalised(self, normalise: Normaliser) -> TrainingData:
        """The same splits through ``normalise`` (held arrays now, streamed batches as read)."""
        held = {split: (normalise(x), y) for split, (x, y) in self.held.items()}
        return TrainingData(self.labels, held, normalise, self.stream)

    def report(self, model: nn.Module, split: str) -> EvalReport | None:
        """Accuracy, per-class metrics and confusion of a model on one split (None: no rows)."""
        y, logits = self.labels_and_logits(model, split)
        return classification_report(y, logits.argmax(axis=1), self.labels) if len(y) else None


def training_data(
    source: FeatureSource,
    labels: Sequence[str],
    train: TrainSettings,
    *,
    column: str = MFCC_COLUMN,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> TrainingData:
    """A model's splits of a feature table.  A train split of more than
    ``train.stream_above_rows`` rows is streamed (:class:`StreamingSplit`, ``train.shuffle_buffer``
    rows, seeded by ``train.seed``); val and test are loaded, and only their rows.  The features
    are as stored: :meth:`TrainingData.normalised` puts every split and every streamed batch
    through a normaliser (e.g. the train split's MFCC mean and std)."""
    frame = as_lazy(source)
    _require_columns(frame, {column, "label", "split"}, column)
    labels = list(labels)
    train_rows = frame.filter(pl.col("split") == "train").select(pl.len()).collect().item()
    stream = None
    held_splits = ["val", "test"]
    if train_rows > train.stream_above_rows:
        stream = StreamingSplit(
            frame,
            labels,
            "train",
            column=column,
            batch_size=train.batch_size,
            shuffle_buffer=train.shuffle_buffer,
            seed=train.seed,
            chunk_rows=chunk_rows,
        )
    else:
        held_splits.insert(0, "train")
    rows = collect_splits(frame, held_splits, [column, "label", "split"])
    held = {split: split_arrays(rows, labels, split, column=column) for split in held_splits}
    del rows
    return TrainingData(labels, held, _identity, stream)


def training_speakers(source: FeatureSource) -> set[str]:
    """The speakers of a feature table's train split (from its speaker column alone)."""
    frame = as_lazy(source).filter(pl.col("split") == "train").select("speaker").unique()
    return set(frame.collect()["speaker"].to_list())


def split_clip_ids(source: FeatureSource, split: str) -> list[str]:
    """The clip ids of one split, in table order (the order of every split array above)."""
    frame = as_lazy(source).filter(pl.col("split") == split).select("clip_id").collect()
    return frame["clip_id"].to_list()


def table_logits(
    model: nn.Module,
    source: FeatureSource,
    *,
    column: str = MFCC_COLUMN,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> tuple[list[str], np.ndarray]:
    """``(clip ids, logits [n, n_classes])`` of a model for every row of a feature table, read a
    chunk at a time (features as stored: no normalisation)."""
    frame = as_lazy(source)
    _require_columns(frame, {column, "clip_id"}, column)
    total = frame.select(pl.len()).collect().item()
    ids: list[str] = []
    logits: list[np.ndarray] = []
    for start in range(0, total, chunk_rows):
        chunk = frame.slice(start, chunk_rows).select("clip_id", column).collect()
        ids.extend(chunk["clip_id"].to_list())
        logits.append(predict_logits(model, np.array(chunk[column].to_numpy(), np.float32)))
    return ids, (np.concatenate(logits) if logits else np.empty((0, 0), np.float32))
