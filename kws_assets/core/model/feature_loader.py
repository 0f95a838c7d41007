"""Training batches streamed from a Parquet feature table, row group by row group.

:func:`~kws_assets.core.model.feature_table.split_arrays` holds a whole split in memory, so a
training step's peak memory grows with the table.  :class:`StreamingSplit` reads one row group at a
time (only the feature, label and split columns), keeps at most ``shuffle_buffer`` rows plus the
row group being read, and yields shuffled ``(x, y)`` batches; the number of rows it ever held is
counted (``max_rows_held``), so a test can check the bound without timing anything.

Shuffling is two-level, as with any streaming loader: the row-group order is permuted per epoch
and rows are drawn at random from the buffer.  Everything is drawn from a generator seeded by
``(seed, epoch)``, so an epoch's batches are the same on every run.  ``balance=True`` oversamples
the smaller classes (each row of class ``c`` is repeated ``n_max / n_c`` times in expectation, at
most ``max_repeat``), computed from one pass over the label column.  Works for the MFCC table
(``mfcc``) and the embedding table (``embedding``) alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from kws_assets.core.model.feature_table import MFCC_COLUMN

DEFAULT_SHUFFLE_BUFFER = 4096
"""Rows drawn from at random: large enough to mix the classes of a few row groups."""
DEFAULT_MAX_REPEAT = 8
"""The most copies of one row class balancing makes in an epoch (a rare class stays rare-ish
rather than one clip being seen a hundred times)."""


@dataclass
class LoaderStats:
    rows_read: int = 0
    batches: int = 0
    max_rows_held: int = 0
    """Most rows held at once: the shuffle buffer plus the decoded row group."""


class StreamingSplit:
    """One split of a feature table (a Parquet file with ``label``, ``split`` and an array
    column), as shuffled training batches read a row group at a time."""

    def __init__(
        self,
        path: str | Path,
        labels: Sequence[str],
        split: str,
        *,
        column: str = MFCC_COLUMN,
        batch_size: int = 64,
        shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
        seed: int = 0,
        balance: bool = False,
        max_repeat: int = DEFAULT_MAX_REPEAT,
    ) -> None:
        if batch_size < 1 or shuffle_buffer < 1 or max_repeat < 1:
            raise ValueError("batch_size, shuffle_buffer and max_repeat must be at least 1")
        self.path = Path(path)
        self.file = pq.ParquetFile(self.path)
        missing = {column, "label", "split"} - set(self.file.schema_arrow.names)
        if missing:
            raise ValueError(
                f"{self.path} lacks the columns {sorted(missing)}: pass the feature table "
                f"(mfcc or embedding) written by the features step, and column= its array column"
            )
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.split, self.column = split, column
        self.batch_size, self.shuffle_buffer = batch_size, shuffle_buffer
        self.seed, self.balance, self.max_repeat = seed, balance, max_repeat
        self.counts = self._class_counts()
        self.stats = LoaderStats()

    def _class_counts(self) -> dict[str, int]:
        """Rows per label in the split, from the label and split columns alone."""
        table = _frame(self.file.read(columns=["label", "split"]))
        rows = table.filter(pl.col("split") == self.split)
        counts = dict(rows.group_by("label").len().iter_rows())
        unknown = set(counts) - set(self.index)
        if unknown:
            raise ValueError(
                f"feature table has labels the model does not know: {sorted(unknown)} "
                f"(labels: {self.labels})"
            )
        return {label: int(counts.get(label, 0)) for label in self.labels}

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

    def _row_group(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        """The split's rows of one row group: features, class indices, rows decoded."""
        table = _frame(self.file.read_row_group(index, columns=[self.column, "label", "split"]))
        decoded = table.height
        rows = table.filter(pl.col("split") == self.split)
        x = rows[self.column].to_numpy().astype(np.float32, copy=False)
        y = np.array([self.index[label] for label in rows["label"].to_list()], dtype=np.int64)
        return x, y, decoded

    def epoch(self, epoch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The batches of one epoch, ``(x [b, ...] float32, y [b] int64)``."""
        rng = np.random.default_rng([self.seed, epoch])
        rates = self.repeat_rates()
        buffer_x: np.ndarray | None = None
        buffer_y = np.empty(0, dtype=np.int64)
        for group in rng.permutation(self.file.metadata.num_row_groups):
            x, y, decoded = self._row_group(int(group))
            self.stats.rows_read += decoded
            if self.balance and y.size:
                rate = rates[y]
                copies = np.floor(rate).astype(np.int64)
                copies += rng.random(y.size) < (rate - copies)
                x, y = np.repeat(x, copies, axis=0), np.repeat(y, copies)
            if y.size == 0:
                continue
            buffer_x = x if buffer_x is None else np.concatenate([buffer_x, x])
            buffer_y = np.concatenate([buffer_y, y])
            self._held(buffer_y.size + decoded)
            while buffer_y.size >= self.shuffle_buffer + self.batch_size:
                buffer_x, buffer_y, batch = self._draw(buffer_x, buffer_y, rng)
                yield batch
        if buffer_x is None:
            return
        order = rng.permutation(buffer_y.size)
        for start in range(0, order.size, self.batch_size):
            take = order[start : start + self.batch_size]
            self.stats.batches += 1
            yield buffer_x[take], buffer_y[take]

    def _draw(
        self, buffer_x: np.ndarray, buffer_y: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """One batch drawn at random from the buffer, and the buffer without it."""
        take = rng.choice(buffer_y.size, size=self.batch_size, replace=False)
        keep = np.ones(buffer_y.size, dtype=bool)
        keep[take] = False
        self.stats.batches += 1
        return buffer_x[keep], buffer_y[keep], (buffer_x[take], buffer_y[take])

    def _held(self, rows: int) -> None:
        self.stats.max_rows_held = max(self.stats.max_rows_held, rows)


def _frame(table: pa.Table) -> pl.DataFrame:
    """A polars frame of an Arrow table (``pl.from_arrow`` is typed frame-or-series)."""
    frame = pl.from_arrow(table)
    if not isinstance(frame, pl.DataFrame):
        raise TypeError(f"expected a table, got {type(frame).__name__}")
    return frame
