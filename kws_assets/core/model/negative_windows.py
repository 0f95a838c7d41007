"""The negative material as a detector sees it: windows of a stream's feature frames, drawn at
random for training, mined where a model fires, and counted as false accepts per hour.

A *negatives table* has one row per recording of the material (``core/dataset/
negative_material.py``): ``segment_id``, ``split`` (``train``/``heldout``), ``kind``,
``seconds``, ``frames`` (how many feature frames) and the frames themselves flattened
(``features``, ``frames * dim`` float32).  A window is ``n_frames`` consecutive frames — what the
family's head classifies at each hop of a stream.  Storing frames, not windows, keeps an hour of
speech-embedding material at ~17 MB instead of ~280 MB; every function here reads the table a few
recordings at a time, so memory follows the windows asked for, not the hours stored.

Why mining: openWakeWord and microWakeWord both train on the false accepts of hours of negative
audio; a detector's false accepts cluster on a few kinds of sound (a syllable, a fragment, a
laugh), and training on exactly those windows lowers them far more than on random ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import polars as pl

from kws_assets.core.model.detect import find_events, keyword_columns, smooth_posteriors
from kws_assets.core.tables import HELDOUT, TRAIN
from kws_assets.settings import HeadNegativeSettings

T = TypeVar("T")

FEATURES = "features"
"""The flattened frames column of a negatives table."""
NEGATIVES_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "segment_id": pl.String,
    "split": pl.String,
    "kind": pl.String,
    "seconds": pl.Float64,
    "frames": pl.Int64,
    FEATURES: pl.List(pl.Float32),
    "label": pl.String,
}
CONTEXT = "context"
"""The split of the rows that are not material but train keyword clips in context: each one
window (``frames == n_frames``) of a keyword with the material's audio around it, labelled."""
READ_ROWS = 8
"""Recordings read at a time (a 60-s embedding recording is ~290 KB)."""
SECONDS_PER_HOUR = 3600.0

Scorer = Callable[[np.ndarray], np.ndarray]
"""Windows ``[k, n_frames, dim]`` -> class probabilities ``[k, n_classes]``."""


def frames_of(row_features: np.ndarray | list[float], frames: int, dim: int) -> np.ndarray:
    """A row's flattened features back as ``[frames, dim]`` float32."""
    x = np.asarray(row_features, dtype=np.float32)
    if x.size != frames * dim:
        raise ValueError(f"a negatives row holds {x.size} values, expected {frames} x {dim}")
    return x.reshape(frames, dim)


def windows_of(frames: np.ndarray, n_frames: int, stride: int = 1) -> np.ndarray:
    """Every ``n_frames`` window of ``frames`` ``[T, dim]`` every ``stride``: a read-only view
    ``[k, n_frames, dim]`` (empty when the recording is shorter than one window)."""
    if frames.shape[0] < n_frames:
        return np.empty((0, n_frames, frames.shape[1]), np.float32)
    view = np.lib.stride_tricks.sliding_window_view(frames, n_frames, axis=0)[::stride]
    return view.transpose(0, 2, 1)


def recordings(
    table: pl.LazyFrame, split: str, dim: int, read_rows: int = READ_ROWS
) -> Iterator[tuple[str, float, np.ndarray]]:
    """``(segment_id, seconds, frames [T, dim])`` of one split's recordings, in table order,
    read ``read_rows`` at a time."""
    ids = table.filter(pl.col("split") == split).select("segment_id").collect()["segment_id"]
    for start in range(0, len(ids), read_rows):
        chunk = ids.slice(start, read_rows).to_list()
        rows = (
            table.filter(pl.col("segment_id").is_in(chunk))
            .select("segment_id", "seconds", "frames", FEATURES)
            .collect()
        )
        by_id = {r["segment_id"]: r for r in rows.iter_rows(named=True)}
        for segment_id in chunk:
            row = by_id[segment_id]
            yield segment_id, float(row["seconds"]), frames_of(row[FEATURES], row["frames"], dim)


def split_hours(table: pl.LazyFrame, split: str) -> float:
    """Hours of material in one split."""
    total = table.filter(pl.col("split") == split).select(pl.col("seconds").sum()).collect()
    return float(total.item() or 0.0) / SECONDS_PER_HOUR


def sample_windows(
    table: pl.LazyFrame,
    split: str,
    count: int,
    n_frames: int,
    dim: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``count`` windows drawn uniformly (with replacement) from every window of a split:
    ``[count, n_frames, dim]`` (fewer only when the split has no window at all)."""
    sizes = table.filter(pl.col("split") == split).select("segment_id", "frames").collect()
    per = np.maximum(sizes["frames"].to_numpy() - n_frames + 1, 0)
    if count <= 0 or per.sum() == 0:
        return np.empty((0, n_frames, dim), np.float32)
    picks = rng.integers(0, int(per.sum()), size=count)
    owner = np.searchsorted(np.cumsum(per), picks, side="right")
    offsets = picks - (np.cumsum(per) - per)[owner]
    wanted: dict[str, list[tuple[int, int]]] = {}
    ids = sizes["segment_id"].to_list()
    for slot, (row, offset) in enumerate(zip(owner, offsets, strict=True)):
        wanted.setdefault(ids[int(row)], []).append((slot, int(offset)))
    out = np.empty((count, n_frames, dim), np.float32)
    for segment_id, _, frames in recordings(table, split, dim):
        for slot, offset in wanted.get(segment_id, ()):
            out[slot] = frames[offset : offset + n_frames]
    return out


def keyword_scores(probs: np.ndarray, keyword_columns: list[int]) -> np.ndarray:
    """Each window's highest keyword probability."""
    return probs[:, keyword_columns].max(axis=1) if keyword_columns else np.zeros(len(probs))


def _local_peaks(scores: np.ndarray, threshold: float, gap: int) -> np.ndarray:
    """Indices of windows at or above ``threshold`` that are the highest within ``gap`` on
    either side (a run of firing windows is one hard negative, not ten near-copies)."""
    above = np.flatnonzero(scores >= threshold)
    keep = []
    for i in above.tolist():
        lo, hi = max(0, i - gap), min(len(scores), i + gap + 1)
        here = float(scores[i])
        before = float(scores[lo:i].max()) if i > lo else -np.inf
        if here > before and here >= float(scores[i:hi].max()):  # a plateau's first
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


@dataclass(frozen=True)
class MinedWindows:
    """The hard negatives of one mining pass."""

    windows: np.ndarray
    """``[k, n_frames, dim]``: the highest-scoring of the windows found."""
    found: int
    """Windows at or above the threshold (local peaks) before the cap."""
    scored: int
    """Windows scored."""


def mine_windows(
    table: pl.LazyFrame,
    split: str,
    score: Scorer,
    keyword_columns: list[int],
    n_frames: int,
    dim: int,
    threshold: float,
    max_windows: int,
    gap: int,
) -> MinedWindows:
    """Every window of a split scored; the local peaks whose keyword probability is at least
    ``threshold``, the ``max_windows`` highest kept (bounded memory: a heap of that size)."""
    kept_scores = np.empty(0, np.float32)
    kept = np.empty((0, n_frames, dim), np.float32)
    found = scored = 0
    for _, _, frames in recordings(table, split, dim):
        view = windows_of(frames, n_frames)
        if not len(view):
            continue
        s = keyword_scores(score(np.ascontiguousarray(view)), keyword_columns)
        scored += len(s)
        peaks = _local_peaks(s, threshold, gap)
        found += len(peaks)
        if not len(peaks):
            continue
        kept_scores = np.concatenate([kept_scores, s[peaks].astype(np.float32)])
        kept = np.concatenate([kept, np.ascontiguousarray(view[peaks])])
        if len(kept_scores) > max_windows:
            top = np.argsort(-kept_scores, kind="stable")[:max_windows]
            kept_scores, kept = kept_scores[top], kept[top]
    return MinedWindows(kept, found, scored)


@dataclass(frozen=True)
class FalseAccepts:
    """False accepts of a detector on keyword-free material."""

    events: int
    hours: float
    threshold: float

    @property
    def per_hour(self) -> float:
        return self.events / self.hours if self.hours > 0 else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        return {
            "events": self.events,
            "hours": round(self.hours, 4),
            "threshold": self.threshold,
            "fa_per_hour": round(self.per_hour, 3),
        }


def false_accepts(
    table: pl.LazyFrame,
    split: str,
    score: Scorer,
    keyword_columns: list[int],
    n_frames: int,
    dim: int,
    threshold: float,
    smoothing_windows: int,
    refractory_windows: int,
) -> FalseAccepts:
    """Detections on every recording of a (keyword-free) split, as the streaming detector counts
    them: posteriors smoothed over ``smoothing_windows``, one event per crossing of
    ``threshold``, then ``refractory_windows`` of silence."""
    events, seconds = 0, 0.0
    for _, length, frames in recordings(table, split, dim):
        seconds += length
        view = windows_of(frames, n_frames)
        if not len(view):
            continue
        probs = smooth_posteriors(score(np.ascontiguousarray(view)), smoothing_windows)
        events += len(find_events(probs[:, keyword_columns], threshold, refractory_windows))
    return FalseAccepts(events, seconds / SECONDS_PER_HOUR, threshold)


def context_windows(
    table: pl.LazyFrame, labels: list[str], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """The keyword-in-context windows of a negatives table (split :data:`CONTEXT`) whose label
    is one of ``labels``: ``(x [n, n_frames, dim], y [n])``."""
    rows = (
        table.filter((pl.col("split") == CONTEXT) & pl.col("label").is_in(labels))
        .select("frames", FEATURES, "label")
        .collect()
    )
    if rows.is_empty():
        return np.empty((0, 0, dim), np.float32), np.empty(0, np.int64)
    x = np.stack([frames_of(r[FEATURES], r["frames"], dim) for r in rows.iter_rows(named=True)])
    y = np.array([labels.index(label) for label in rows["label"]], dtype=np.int64)
    return x, y


def with_negatives(
    inputs: dict[str, Any],
    extra: np.ndarray,
    unknown_index: int,
    seed: int,
    positives: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """``training.train_model`` keywords (``TrainingData.train_inputs()``) with ``extra``
    windows added to the train split as ``_unknown_`` (and ``positives``, labelled windows):
    appended to an in-memory split, or interleaved (shuffled afresh each epoch) with a streamed
    split's batches."""
    labels = np.full(len(extra), unknown_index, dtype=np.int64)
    if positives is not None and len(positives[1]):
        extra = np.concatenate([extra, positives[0].astype(np.float32)])
        labels = np.concatenate([labels, positives[1]])
    if not len(extra):
        return inputs
    out = dict(inputs)
    if inputs.get("x_train") is not None:
        out["x_train"] = np.concatenate([inputs["x_train"], extra.astype(np.float32)])
        out["y_train"] = np.concatenate([inputs["y_train"], labels])
        return out
    batches = inputs["train_batches"]

    def mixed(epoch: int) -> Iterator[tuple[np.ndarray, ...]]:
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(extra))
        pending = list(batches(epoch))
        size = max(1, len(pending[0][1])) if pending else len(extra)
        extra_batches = [order[i : i + size] for i in range(0, len(order), size)]
        slots = rng.permutation(len(pending) + len(extra_batches))
        for slot in slots:
            if slot < len(pending):
                yield pending[slot]
            else:
                rows = extra_batches[slot - len(pending)]
                yield extra[rows], labels[rows]

    out["train_batches"] = mixed
    counts = list(inputs.get("train_class_counts") or [])
    if counts:
        for label, count in zip(*np.unique(labels, return_counts=True), strict=True):
            counts[int(label)] += int(count)
        out["train_class_counts"] = counts
    return out


@dataclass(frozen=True)
class NegativeRound:
    """What one training round saw and what it did on the held-out material."""

    round: int
    random_windows: int
    mined_windows: int
    heldout: FalseAccepts | None
    mined_next: MinedWindows | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "round": self.round,
            "random_windows": self.random_windows,
            "mined_windows": self.mined_windows,
        }
        if self.heldout is not None:
            out["heldout"] = self.heldout.as_dict()
        if self.mined_next is not None:
            out["hard_windows_found"] = self.mined_next.found
            out["windows_scored"] = self.mined_next.scored
        return out


@dataclass(frozen=True)
class WindowSettings:
    """How a family's windows sit in its negatives table and how its detector counts events."""

    n_frames: int
    dim: int
    hop_s: float
    smoothing_windows: int
    refractory_s: float

    @property
    def refractory_windows(self) -> int:
        return int(np.ceil(self.refractory_s / self.hop_s))


def random_window_count(settings: HeadNegativeSettings, train_rows: int) -> int:
    """Random windows per round: ``window_ratio`` per train row, at most ``max_windows``."""
    return min(settings.max_windows, round(settings.window_ratio * train_rows))


def train_with_negatives(
    fit: Callable[[np.ndarray, T | None], T],
    scorer: Callable[[T], Scorer],
    table: pl.LazyFrame,
    settings: HeadNegativeSettings,
    labels: list[str],
    windows: WindowSettings,
    seed: int,
    log: Callable[[str], None],
    train_rows: int,
) -> tuple[T, list[NegativeRound]]:
    """Round 1: ``fit`` on the clips plus :func:`random_window_count` random train windows; then
    ``settings.mining_rounds`` times: mine the previous model's false accepts on the train
    material and ``fit`` again with them repeated ``settings.mined_repeat`` times beside fresh
    random windows.  ``fit(extra, previous)`` gets the previous round's model (None in round
    1), so a mining round can start from it rather than from scratch.  Every round's model is
    measured on the held-out material (FA/h at ``settings.report_threshold``); the last round's
    model is returned with the rounds."""
    columns = keyword_columns(labels)
    n, dim = windows.n_frames, windows.dim
    heldout = split_hours(table, HELDOUT) > 0
    hard = np.empty((0, n, dim), np.float32)
    rounds: list[NegativeRound] = []
    model: T | None = None
    for index in range(settings.mining_rounds + 1):
        rng = np.random.default_rng([seed, index])
        random = sample_windows(
            table, TRAIN, random_window_count(settings, train_rows), n, dim, rng
        )
        extra = np.concatenate([random, np.repeat(hard, settings.mined_repeat, axis=0)])
        log(
            f"negatives round {index + 1}: {len(random)} random windows of the material, "
            f"{len(hard)} mined windows x {settings.mined_repeat}"
        )
        model = fit(extra, model)
        score = scorer(model)
        measured = (
            false_accepts(
                table,
                HELDOUT,
                score,
                columns,
                n,
                dim,
                settings.report_threshold,
                windows.smoothing_windows,
                windows.refractory_windows,
            )
            if heldout
            else None
        )
        if measured is not None:
            log(
                f"negatives round {index + 1}: {measured.events} false accepts in "
                f"{measured.hours:.2f} h of held-out material ({measured.per_hour:.1f}/h at "
                f"{measured.threshold})"
            )
        mined = None
        if index < settings.mining_rounds:
            mined = mine_windows(
                table,
                TRAIN,
                score,
                columns,
                n,
                dim,
                settings.mining_threshold,
                settings.mined_max,
                settings.mining_gap_windows,
            )
            log(
                f"negatives round {index + 1}: {mined.found} hard windows (score >= "
                f"{settings.mining_threshold}) among {mined.scored}; keeping {len(mined.windows)}"
            )
            hard = mined.windows
        rounds.append(
            NegativeRound(index + 1, len(random), len(extra) - len(random), measured, mined)
        )
    assert model is not None
    return model, rounds
