"""The operating point (threshold x smoothing x refractory period) chosen on validation streams
as the lowest-FRR setting that meets the false-accept target, and the test streams' report at it:
selected, not tuned on the test set."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from kws_assets.core.evaluation.det import (
    SECONDS_PER_HOUR,
    DetCurve,
    OperatingPoint,
    det_curve,
    det_curve_at,
    threshold_grid,
)
from kws_assets.core.evaluation.streams import Positive
from kws_assets.core.model.detect import (
    DetectorOperatingPoint,
    StreamingDetector,
    StreamPosteriors,
)


@dataclass(frozen=True)
class ScoredStreams:
    """Posteriors of one negative and one positive stream (one model pass each), reusable for
    every threshold, smoothing and refractory setting."""

    negative: StreamPosteriors
    negative_seconds: float
    positive: StreamPosteriors
    positives: list[Positive]

    def curve(
        self, thresholds: np.ndarray, smoothing_windows: int, refractory_s: float
    ) -> DetCurve:
        return det_curve_at(
            self.negative,
            self.negative_seconds,
            self.positive,
            self.positives,
            thresholds,
            smoothing_windows,
            refractory_s,
        )


@dataclass(frozen=True)
class Selection:
    """The operating point chosen on validation streams, and how every candidate did there."""

    detector: DetectorOperatingPoint
    validation: OperatingPoint
    meets_target: bool
    target_fa_per_hour: float
    candidates: list[dict[str, object]]

    def as_dict(self) -> dict[str, object]:
        return {
            "detector": self.detector.as_dict(),
            "validation": self.validation.as_dict(),
            "meets_target_on_validation": self.meets_target,
            "target_fa_per_hour": self.target_fa_per_hour,
            "candidates": self.candidates,
        }


def select_operating_point(
    scored: ScoredStreams,
    thresholds: np.ndarray,
    smoothing_grid: Sequence[int],
    refractory_grid_s: Sequence[float],
    target_fa_per_hour: float,
    hop_ms: float,
) -> Selection:
    """The (threshold, smoothing, refractory) with the lowest FRR among those whose false-accept
    rate on ``scored`` is at most the target; ties go to fewer false accepts, then less smoothing
    (earlier detections), then the shorter refractory period.  When no setting meets the target,
    the one with the fewest false accepts at its strictest threshold is returned, flagged."""
    if not len(smoothing_grid) or not len(refractory_grid_s):
        raise ValueError(
            "operating-point selection needs a non-empty smoothing and refractory grid"
        )
    best_key, best = None, None
    candidates: list[dict[str, object]] = []
    for smoothing in smoothing_grid:
        for refractory in refractory_grid_s:
            point = scored.curve(thresholds, int(smoothing), float(refractory)).at_fa_rate(
                target_fa_per_hour
            )
            meets = point.fa_per_hour <= target_fa_per_hour
            candidates.append(
                {
                    "smoothing_windows": int(smoothing),
                    "refractory_s": float(refractory),
                    "meets_target": meets,
                    **point.as_dict(),
                }
            )
            key = (
                not meets,
                point.frr if meets else point.fa_per_hour,
                point.fa_per_hour if meets else point.frr,
                int(smoothing),
                float(refractory),
            )
            if best_key is None or key < best_key:
                best_key, best = key, (point, int(smoothing), float(refractory), meets)
    if best is None:  # the grids were checked non-empty above
        raise ValueError("operating-point selection found no candidate")
    point, smoothing, refractory, meets = best
    return Selection(
        DetectorOperatingPoint(point.threshold, smoothing, refractory, hop_ms),
        point,
        meets,
        target_fa_per_hour,
        candidates,
    )


@dataclass
class StreamReport:
    """What the streaming evaluation measured, for metadata and ``evaluation.json``."""

    negative_seconds: float
    negative_reuse_passes: int
    positives: int
    curve: DetCurve
    target_fa_per_hour: float
    selection: Selection | None = None
    """Set: the curve is the test streams' at the selected smoothing/refractory and the operating
    point is the selected threshold's; unset: the point is the curve's own lowest-FRR one."""
    operating_point: OperatingPoint = field(init=False)

    def selected(self) -> Selection:
        """The selection, where one was made (:func:`evaluate_family` always makes one)."""
        if self.selection is None:
            raise ValueError("this stream report was made without operating-point selection")
        return self.selection

    def __post_init__(self) -> None:
        if self.selection is None:
            self.operating_point = self.curve.at_fa_rate(self.target_fa_per_hour)
        else:
            index = int(
                np.argmin(np.abs(self.curve.thresholds - self.selection.detector.threshold))
            )
            self.operating_point = self.curve.point(index)

    def as_dict(self) -> dict[str, object]:
        return {
            "negative_hours": round(self.negative_seconds / SECONDS_PER_HOUR, 6),
            "negative_material_reused": self.negative_reuse_passes,
            "positives": self.positives,
            "target_fa_per_hour": self.target_fa_per_hour,
            "operating_point": self.operating_point.as_dict(),
            **({"selection": self.selection.as_dict()} if self.selection is not None else {}),
            "det_curve": [self.curve.point(i).as_dict() for i in range(len(self.curve.thresholds))],
        }


def streaming_report(
    detector: StreamingDetector,
    negative_audio: np.ndarray,
    positive_audio: np.ndarray,
    positives: Sequence[Positive],
    sample_rate: int,
    threshold_steps: int,
    target_fa_per_hour: float,
    reuse_passes: int = 0,
    progress: Callable[[str], None] | None = None,
) -> StreamReport:
    """Posteriors of both streams (one pass each), then the threshold sweep."""
    say = progress or (lambda _msg: None)
    say(f"streaming {negative_audio.size / sample_rate / 60:.1f} min of negative audio")
    negative = detector.posteriors(negative_audio, sample_rate)
    say(
        f"streaming {positive_audio.size / sample_rate / 60:.1f} min with {len(positives)} keywords"
    )
    positive = detector.posteriors(positive_audio, sample_rate)
    curve = det_curve(
        detector,
        negative,
        negative_audio.size / sample_rate,
        positive,
        positives,
        threshold_grid(threshold_steps),
    )
    return StreamReport(
        negative_audio.size / sample_rate, reuse_passes, len(positives), curve, target_fa_per_hour
    )
