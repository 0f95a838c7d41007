"""The operating point (threshold x smoothing x refractory period) chosen on validation streams
as the lowest-FRR setting that meets the false-accept target, and the test streams' report at it:
selected, not tuned on the test set.

"Meets the target" means the *upper* end of the point's exact FA/h interval
(:mod:`~kws_assets.core.evaluation.intervals`, two-sided at ``confidence``) is at most the target:
a measured 0 false accepts in half an hour is no evidence of 1 FA/h (its 95% interval reaches
7.4/h).  When the negative hours are too few for any point to meet the target so, the selection
falls back to the measured rate (as it did before bounds) and says so, with the hours it would
need.  A selected point that misses more than ``max_frr`` of the validation keywords is flagged
``usable: false``: a detector that never fires meets every false-accept target."""

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
from kws_assets.core.evaluation.intervals import (
    DEFAULT_LEVEL,
    SIDED,
    clopper_pearson,
    hours_for_target,
    rate_interval,
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


DEFAULT_MAX_FRR = 0.5
"""The settings' default ``evaluation.max_frr``: a point missing most keywords is not usable."""


@dataclass(frozen=True)
class PointBounds:
    """The exact intervals of one operating point's FA/h and FRR, and the counts they come from
    (two-sided at ``level``)."""

    fa_per_hour_lower: float
    fa_per_hour_upper: float
    frr_lower: float
    frr_upper: float
    level: float
    negative_hours: float
    keywords: int

    @classmethod
    def of(
        cls, point: OperatingPoint, negative_hours: float, keywords: int, level: float
    ) -> PointBounds:
        """The bounds of ``point`` (its false accepts in ``negative_hours``, its misses of
        ``keywords``)."""
        fa = rate_interval(point.false_accepts, negative_hours, level)
        frr = clopper_pearson(point.misses, keywords, level)
        return cls(fa.lower, fa.upper, frr.lower, frr.upper, level, negative_hours, keywords)

    def as_dict(self) -> dict[str, object]:
        return {
            "fa_per_hour_lower": round(self.fa_per_hour_lower, 4),
            "fa_per_hour_upper": round(self.fa_per_hour_upper, 4),
            "frr_lower": round(self.frr_lower, 4),
            "frr_upper": round(self.frr_upper, 4),
            "level": self.level,
            "sided": SIDED,
            "negative_hours": round(self.negative_hours, 6),
            "keywords": self.keywords,
        }


@dataclass(frozen=True)
class Selection:
    """The operating point chosen on validation streams, how every candidate did there, and
    whether the choice can be trusted (``meets_target``: by the FA/h upper bound) and used
    (``usable``: it finds at least ``1 - max_frr`` of the keywords)."""

    detector: DetectorOperatingPoint
    validation: OperatingPoint
    meets_target: bool
    target_fa_per_hour: float
    candidates: list[dict[str, object]]
    bounds: PointBounds | None = None
    """The validation point's intervals (None only for a selection made by hand)."""
    meets_target_measured: bool | None = None
    """Whether the *measured* FA/h meets the target (what ``meets_target`` meant before
    bounds)."""
    reason: str = ""
    """Why the point was chosen the way it was, when not by its bound."""
    negative_hours_needed: float | None = None
    """Negative hours on which a point with no false accept would meet the target by its bound;
    set when the validation hours were too few for that."""
    max_frr: float = DEFAULT_MAX_FRR
    usable: bool = True
    usable_message: str = ""

    def as_dict(self) -> dict[str, object]:
        bounds = self.bounds.as_dict() if self.bounds is not None else {}
        return {
            "detector": self.detector.as_dict(),
            "validation": self.validation.as_dict(),
            "meets_target_on_validation": self.meets_target,
            "target_fa_per_hour": self.target_fa_per_hour,
            "candidates": self.candidates,
            "validation_bounds": bounds,
            "meets_target_measured_on_validation": self.meets_target_measured,
            "reason": self.reason,
            "negative_hours_needed": (
                None
                if self.negative_hours_needed is None
                else float(f"{self.negative_hours_needed:.4g}")
            ),
            "max_frr": self.max_frr,
            "usable": self.usable,
            "usable_message": self.usable_message,
        }


def _not_met_reason(
    best_measured: bool, negative_hours: float, target: float, level: float
) -> tuple[str, float | None]:
    """Why no candidate met the target by its bound, and the hours that would let one."""
    needed = hours_for_target(target, level)
    bound = rate_interval(0, negative_hours, level).upper
    if negative_hours < needed:
        head = (
            f"no point can meet {target:g} FA/h at {level:.0%}: on {negative_hours:.3g} h of "
            f"validation negatives even 0 false accepts bounds FA/h only by {bound:.3g}; "
            f"{needed:.3g} h would be needed"
        )
    else:
        head = (
            f"no point's FA/h upper bound ({level:.0%}) meets {target:g} FA/h on "
            f"{negative_hours:.3g} h of validation negatives"
        )
    tail = (
        "; chosen by the measured FA/h instead (lowest FRR at measured FA/h <= target)"
        if best_measured
        else "; not even the measured FA/h meets it: chosen with the fewest false accepts"
    )
    return head + tail, needed if negative_hours < needed else None


def _usability(frr: float, bounds: PointBounds, max_frr: float) -> tuple[bool, str]:
    """The rule that refuses a point missing most keywords, and what to do about it."""
    if frr <= max_frr:
        return True, ""
    return False, (
        f"NOT USABLE: the selected point misses {frr:.0%} of the validation keywords "
        f"({bounds.frr_lower:.1%}-{bounds.frr_upper:.1%} at {bounds.level:.0%}, "
        f"{bounds.keywords} keywords); evaluation.max_frr accepts at most {max_frr:.0%}. "
        "Give the evaluation more or cleaner negative hours (evaluation.negative_minutes, "
        "evaluation.selection_negative_minutes), a higher evaluation.target_fa_per_hour, or "
        "more keyword data; kws detect still runs this point"
    )


REFERENCE_WINDOW_S = 1.0
"""The window ``evaluation.refractory_grid_s`` is written for (a 1-s clip)."""


def window_scaled(seconds: Sequence[float], window_s: float) -> list[float]:
    """Refractory periods written for a 1-s window, stretched to a detector's window: a keyword
    keeps a window's posterior high for about as long as the window holds it, so a 1.5-s phrase
    window needs 1.5x the refractory to not fire twice on one phrase.  A 1-s window keeps the
    grid as written."""
    factor = window_s / REFERENCE_WINDOW_S
    return [float(s) if factor == 1.0 else round(float(s) * factor, 3) for s in seconds]


def select_operating_point(
    scored: ScoredStreams,
    thresholds: np.ndarray,
    smoothing_grid: Sequence[int],
    refractory_grid_s: Sequence[float],
    target_fa_per_hour: float,
    hop_ms: float,
    confidence: float = DEFAULT_LEVEL,
    max_frr: float = DEFAULT_MAX_FRR,
) -> Selection:
    """The (threshold, smoothing, refractory) with the lowest FRR among those whose FA/h upper
    bound (exact Poisson interval at ``confidence``) on ``scored`` is at most the target; ties go
    to fewer false accepts, then less smoothing (earlier detections), then the shorter
    refractory period.

    When no setting meets the target by its bound (too few negative hours, say), the choice is
    made as without bounds, flagged with the reason and the hours needed: the lowest FRR whose
    *measured* FA/h meets the target, else the fewest false accepts at the strictest threshold.
    A chosen point whose validation FRR is above ``max_frr`` is flagged not usable."""
    if not len(smoothing_grid) or not len(refractory_grid_s):
        raise ValueError(
            "operating-point selection needs a non-empty smoothing and refractory grid"
        )
    hours = scored.negative_seconds / SECONDS_PER_HOUR
    keywords = len(scored.positives)
    best_key, best = None, None
    candidates: list[dict[str, object]] = []
    for smoothing in smoothing_grid:
        for refractory in refractory_grid_s:
            curve = scored.curve(thresholds, int(smoothing), float(refractory))
            upper = np.array(
                [rate_interval(int(n), hours, confidence).upper for n in curve.false_accepts]
            )
            bounded = np.flatnonzero(upper <= target_fa_per_hour)
            if bounded.size:  # the lowest FRR among the points the bound lets through
                frr = curve.frr[bounded]
                ties = bounded[frr == frr.min()]
                point = curve.point(int(ties.min()))
            else:
                point = curve.at_fa_rate(target_fa_per_hour)
            point_bounds = PointBounds.of(point, hours, keywords, confidence)
            meets = point_bounds.fa_per_hour_upper <= target_fa_per_hour
            measured = point.fa_per_hour <= target_fa_per_hour
            candidates.append(
                {
                    "smoothing_windows": int(smoothing),
                    "refractory_s": float(refractory),
                    "meets_target": meets,
                    "meets_target_measured": measured,
                    **point.as_dict(),
                    "fa_per_hour_upper": round(point_bounds.fa_per_hour_upper, 4),
                    "frr_upper": round(point_bounds.frr_upper, 4),
                }
            )
            key = (
                not meets,
                not measured,
                point.frr if measured else point.fa_per_hour,
                point.fa_per_hour if measured else point.frr,
                int(smoothing),
                float(refractory),
            )
            if best_key is None or key < best_key:
                best_key = key
                best = (point, point_bounds, int(smoothing), float(refractory), meets, measured)
    if best is None:  # the grids were checked non-empty above
        raise ValueError("operating-point selection found no candidate")
    point, bounds, smoothing, refractory, meets, measured = best
    reason, needed = (
        ("", None) if meets else _not_met_reason(measured, hours, target_fa_per_hour, confidence)
    )
    usable, message = _usability(point.frr, bounds, max_frr)
    return Selection(
        DetectorOperatingPoint(point.threshold, smoothing, refractory, hop_ms),
        point,
        meets,
        target_fa_per_hour,
        candidates,
        bounds,
        measured,
        reason,
        needed,
        max_frr,
        usable,
        message,
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
    confidence: float | None = None
    """Level of the operating point's intervals (default: the selection's, else 0.95)."""
    operating_point: OperatingPoint = field(init=False)
    bounds: PointBounds = field(init=False)
    """The test operating point's FA/h and FRR intervals."""

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
        level = self.confidence or (
            self.selection.bounds.level
            if self.selection is not None and self.selection.bounds is not None
            else DEFAULT_LEVEL
        )
        self.bounds = PointBounds.of(
            self.operating_point, self.negative_seconds / SECONDS_PER_HOUR, self.positives, level
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "negative_hours": round(self.negative_seconds / SECONDS_PER_HOUR, 6),
            "negative_material_reused": self.negative_reuse_passes,
            "positives": self.positives,
            "target_fa_per_hour": self.target_fa_per_hour,
            "operating_point": self.operating_point.as_dict(),
            "operating_point_bounds": self.bounds.as_dict(),
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
