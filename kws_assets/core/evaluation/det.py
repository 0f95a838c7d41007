"""The detection error trade-off: false accepts per hour on a keyword-free stream against the
false rejection rate on a stream of embedded keywords, over a sweep of detection thresholds,
counted from the posteriors a streaming detector really produced."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kws_assets.core.evaluation.streams import Positive
from kws_assets.core.model.detect import (
    StreamingDetector,
    StreamPosteriors,
    find_events,
    keyword_columns,
    smooth_posteriors,
)

MATCH_TOLERANCE_S = 0.5
"""A detection hits a positive when its window starts within this of the clip's start."""
SECONDS_PER_HOUR = 3600.0
MIN_THRESHOLD = 0.01
MAX_THRESHOLD = 0.999
SATURATED_THRESHOLDS = (0.9995, 0.9999, 0.99995, 0.99999)


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    fa_per_hour: float
    frr: float
    false_accepts: int
    misses: int

    def as_dict(self) -> dict[str, float]:
        return {
            "threshold": round(self.threshold, 4),
            "fa_per_hour": round(self.fa_per_hour, 3),
            "frr": round(self.frr, 4),
            "false_accepts": self.false_accepts,
            "misses": self.misses,
        }


@dataclass(frozen=True)
class DetCurve:
    """False accepts per hour (negative stream) and false rejection rate (positive stream) over
    a sweep of detection thresholds (ascending)."""

    thresholds: np.ndarray
    false_accepts: np.ndarray
    misses: np.ndarray
    negative_hours: float
    positives: int

    @property
    def fa_per_hour(self) -> np.ndarray:
        return self.false_accepts / self.negative_hours

    @property
    def frr(self) -> np.ndarray:
        return self.misses / max(self.positives, 1)

    def point(self, index: int) -> OperatingPoint:
        return OperatingPoint(
            float(self.thresholds[index]),
            float(self.fa_per_hour[index]),
            float(self.frr[index]),
            int(self.false_accepts[index]),
            int(self.misses[index]),
        )

    def at_fa_rate(self, target_fa_per_hour: float) -> OperatingPoint:
        """The lowest-FRR threshold whose false-accept rate is at most the target (the highest
        threshold if none reaches it; its FA rate then shows by how much it is missed)."""
        ok = np.flatnonzero(self.fa_per_hour <= target_fa_per_hour)
        if ok.size == 0:
            return self.point(len(self.thresholds) - 1)
        best = ok[np.argmin(self.frr[ok])]
        ties = ok[self.frr[ok] == self.frr[best]]
        return self.point(int(ties.min()))  # the lowest threshold among equals: most sensitive


SEARCH_SLACK_S = 1e-6
"""Bisection looks this much wider, then the tolerance itself decides (rounding at the edge)."""


def count_hits(
    detections: Sequence[tuple[float, str]],
    positives: Sequence[Positive],
    tolerance_s: float = MATCH_TOLERANCE_S,
) -> int:
    """How many positives a detection ``(window start, keyword)`` of the right keyword found
    (each detection counts for at most one positive)."""
    if not detections or not positives:
        return 0
    used = [False] * len(detections)
    starts = np.array([d[0] for d in detections], dtype=np.float64)
    # the detections within the tolerance of a positive are a run of the starts in time order:
    # found by bisection, every positive at once (a sweep asks this for every threshold of every
    # grid point); the few candidates are then checked in detection order, as a scan finds them
    order = np.argsort(starts, kind="stable")
    ordered = starts[order]
    at = np.array([p.start_s for p in positives], dtype=np.float64)
    lows = np.searchsorted(ordered, at - tolerance_s - SEARCH_SLACK_S, "left").tolist()
    highs = np.searchsorted(ordered, at + tolerance_s + SEARCH_SLACK_S, "right").tolist()
    by_time, start_of = order.tolist(), starts.tolist()
    hits = 0
    for positive, low, high in zip(positives, lows, highs, strict=True):
        for index in sorted(by_time[low:high]):
            if (
                not used[index]
                and abs(start_of[index] - positive.start_s) <= tolerance_s
                and detections[index][1] == positive.label
            ):
                used[index] = True
                hits += 1
                break
    return hits


def threshold_grid(steps: int) -> np.ndarray:
    """``steps`` thresholds from 0.01 to 0.999, denser near 1 where wake-word operating points
    live, the last few of them replaced by :data:`SATURATED_THRESHOLDS` (0.9995 ... 0.99999):
    a confident model's false accepts score above 0.999, and a sweep that stops there cannot
    reach a low false-accept target."""
    tail = SATURATED_THRESHOLDS[: max(0, steps - 2)]
    linear = np.linspace(0.0, 1.0, steps - len(tail))
    head = MIN_THRESHOLD + (MAX_THRESHOLD - MIN_THRESHOLD) * (1.0 - (1.0 - linear) ** 2)
    return np.concatenate([head, np.asarray(tail, dtype=np.float64)])


def det_curve(
    detector: StreamingDetector,
    negative: StreamPosteriors,
    negative_seconds: float,
    positive: StreamPosteriors,
    positives: Sequence[Positive],
    thresholds: np.ndarray,
) -> DetCurve:
    """Sweep ``thresholds`` over posteriors already computed for both streams, at the
    detector's smoothing and refractory period."""
    return det_curve_at(
        negative,
        negative_seconds,
        positive,
        positives,
        thresholds,
        detector.smoothing_windows,
        detector.refractory_s,
    )


def det_curve_at(
    negative: StreamPosteriors,
    negative_seconds: float,
    positive: StreamPosteriors,
    positives: Sequence[Positive],
    thresholds: np.ndarray,
    smoothing_windows: int,
    refractory_s: float,
) -> DetCurve:
    """Sweep ``thresholds`` over precomputed posteriors at a given smoothing (windows) and
    refractory period (seconds): exactly what a detector with those settings reports."""
    labels = negative.labels
    columns = keyword_columns(labels)
    names = [labels[c] for c in columns]
    refractory = int(np.ceil(refractory_s / negative.hop_s))
    neg = smooth_posteriors(negative.probs, smoothing_windows)[:, columns]
    pos = smooth_posteriors(positive.probs, smoothing_windows)[:, columns]
    false_accepts, misses = [], []
    for threshold in thresholds:
        false_accepts.append(len(find_events(neg, float(threshold), refractory)))
        found = [
            (float(positive.start_s[w]), names[c])
            for w, c, _ in find_events(pos, float(threshold), refractory)
        ]
        misses.append(len(positives) - count_hits(found, positives))
    return DetCurve(
        np.asarray(thresholds, dtype=np.float64),
        np.asarray(false_accepts),
        np.asarray(misses),
        negative_seconds / SECONDS_PER_HOUR,
        len(positives),
    )
