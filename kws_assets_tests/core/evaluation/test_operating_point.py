"""Operating-point selection on synthetic posterior streams, and the test streams' report at the
selected point."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.evaluation.det import count_hits
from kws_assets.core.evaluation.intervals import clopper_pearson, rate_interval
from kws_assets.core.evaluation.operating_point import (
    ScoredStreams,
    StreamReport,
    select_operating_point,
    window_scaled,
)
from kws_assets.core.evaluation.streams import Positive
from kws_assets.core.model.detect import (
    DetectorOperatingPoint,
    StreamingDetector,
    StreamPosteriors,
)

LABELS = ["_silence_", "_unknown_", "word"]
HOP_S = 0.1
GRID = np.round(np.linspace(0.05, 0.95, 19), 2)  # 0.05, 0.10, ..., 0.95


def _posteriors(keyword: np.ndarray) -> StreamPosteriors:
    probs = np.zeros((keyword.size, len(LABELS)), dtype=np.float32)
    probs[:, 2] = keyword
    probs[:, 0] = 1.0 - keyword
    return StreamPosteriors(np.arange(keyword.size) * HOP_S, probs, LABELS, 1.0, HOP_S)


def _synthetic_streams() -> ScoredStreams:
    """An hour of negatives where short spikes and 3-window bursts fool light smoothing, and
    keywords as 5-window plateaus at 0.75 (some in pairs 0.6 s apart: a 1-s refractory period
    swallows the second) or single-window peaks (lost by any smoothing)."""
    negative = np.zeros(36000, dtype=np.float32)
    negative[np.arange(10) * 3000 + 500] = (
        0.99  # 10 spikes: FA for smoothing 1 at any grid threshold
    )
    for start in np.arange(5) * 7000 + 1700:  # 5 bursts: 0.8 after 3-window smoothing, 0.48 after 5
        negative[start : start + 3] = 0.8
    positive = np.zeros(3000, dtype=np.float32)
    positives: list[Positive] = []

    def plateau(first: int) -> None:
        positive[first : first + 5] = 0.75
        positives.append(Positive("word", (first + 2) * HOP_S, f"p{len(positives)}"))

    for i in range(6):
        plateau(100 + 100 * i)
    for first in (800, 1000):  # pairs
        plateau(first)
        plateau(first + 6)
    for i in range(5):  # single-window peaks
        positive[1300 + 100 * i] = 0.95
        positives.append(Positive("word", (1300 + 100 * i) * HOP_S, f"w{i}"))
    return ScoredStreams(_posteriors(negative), 3600.0, _posteriors(positive), positives)


def test_selection_picks_the_lowest_frr_point_meeting_the_target() -> None:
    scored = _synthetic_streams()
    # 1 h of negatives: 0 false accepts bound FA/h by 3.689 (95%), 1 by 5.57: a target of 4 FA/h
    # takes the points without false accepts
    selection = select_operating_point(scored, GRID, [1, 3, 5], [0.5, 1.0], 4.0, 100.0)
    assert selection.meets_target and selection.reason == "" and selection.usable
    # smoothing 1 cannot reach 1 FA/h (the spikes), smoothing 3 only by missing every keyword,
    # smoothing 5 with the 0.5-s refractory finds all plateaus (both of each pair); the lowest
    # threshold above the bursts' 0.48 is the most sensitive of the equals
    assert selection.detector == DetectorOperatingPoint(0.5, 5, 0.5, 100.0)
    assert selection.validation.frr == pytest.approx(5 / 15)
    assert selection.validation.false_accepts == 0
    by_setting = {(c["smoothing_windows"], c["refractory_s"]): c for c in selection.candidates}
    assert not by_setting[(1, 0.5)]["meets_target"]
    assert by_setting[(3, 1.0)]["frr"] == 1.0
    assert by_setting[(5, 1.0)]["frr"] == pytest.approx(
        7 / 15, abs=1e-3
    )  # the pairs' second keywords
    # what the selection claims is what a detector at that point does on the same posteriors
    detector = StreamingDetector.at(_FakeClassifier(), selection.detector)
    assert len(detector.events(scored.negative)) == 0
    found = [(d.start_s, d.keyword) for d in detector.events(scored.positive)]
    assert count_hits(found, scored.positives) == 10


def test_a_measured_rate_meeting_the_target_is_not_enough_without_the_hours() -> None:
    scored = _synthetic_streams()
    selection = select_operating_point(scored, GRID, [1, 3, 5], [0.5, 1.0], 1.0, 100.0)
    # 0 false accepts in 1 h "meets" 1 FA/h as measured, but its 95% upper bound is 3.689/h
    assert not selection.meets_target and selection.meets_target_measured
    assert not any(c["meets_target"] for c in selection.candidates)
    bounds = selection.bounds
    assert bounds is not None and bounds.negative_hours == pytest.approx(1.0)
    assert bounds.fa_per_hour_upper == pytest.approx(3.6889, abs=1e-4)
    assert bounds.fa_per_hour_lower == 0.0 and bounds.keywords == 15
    frr = clopper_pearson(5, 15, 0.95)
    assert (bounds.frr_lower, bounds.frr_upper) == pytest.approx((frr.lower, frr.upper))
    # the fallback chooses as the measured rate would, and says why and how many hours it needs
    assert selection.detector == DetectorOperatingPoint(0.5, 5, 0.5, 100.0)
    assert selection.negative_hours_needed == pytest.approx(3.6889, abs=1e-4)
    assert "3.69 h would be needed" in selection.reason and "measured FA/h" in selection.reason
    body = selection.as_dict()
    assert body["meets_target_on_validation"] is False
    assert body["validation_bounds"]["fa_per_hour_upper"] == pytest.approx(3.6889, abs=1e-4)
    assert body["validation_bounds"]["sided"] == "two-sided"
    assert body["negative_hours_needed"] == pytest.approx(3.689, abs=1e-3)
    # the same posteriors over 10 h (the negatives repeated): now the bound (0.369/h) meets it
    tiled = np.tile(scored.negative.probs, (10, 1))
    longer = ScoredStreams(
        StreamPosteriors(np.arange(len(tiled)) * HOP_S, tiled, LABELS, 1.0, HOP_S),
        36000.0,
        scored.positive,
        scored.positives,
    )
    enough = select_operating_point(longer, GRID, [1, 3, 5], [0.5, 1.0], 1.0, 100.0)
    assert enough.meets_target and enough.reason == "" and enough.negative_hours_needed is None
    assert enough.detector == selection.detector
    assert enough.bounds is not None
    assert enough.bounds.fa_per_hour_upper == pytest.approx(0.36889, abs=1e-5)


def test_a_point_missing_most_keywords_is_flagged_not_usable() -> None:
    scored = _synthetic_streams()
    strict = select_operating_point(scored, GRID, [5], [0.5], 4.0, 100.0, max_frr=0.3)
    assert strict.meets_target and not strict.usable  # FRR 5/15 = 33% > 30%
    message = strict.usable_message
    assert "misses 33% of the validation keywords" in message and "at most 30%" in message
    assert "negative" in message and "target_fa_per_hour" in message and "keyword data" in message
    assert strict.as_dict()["usable"] is False and strict.as_dict()["max_frr"] == 0.3
    # smoothing 3 reaches 4 FA/h only by missing every keyword: the default rule refuses that
    never = select_operating_point(scored, GRID, [3], [1.0], 4.0, 100.0)
    assert never.validation.frr == 1.0 and not never.usable
    assert "misses 100%" in never.usable_message
    assert select_operating_point(scored, GRID, [5], [0.5], 4.0, 100.0).usable


def test_an_unreachable_target_is_flagged_with_the_fewest_false_accepts() -> None:
    scored = _synthetic_streams()
    selection = select_operating_point(scored, GRID, [1], [0.5, 1.0], 1.0, 100.0)
    assert not selection.meets_target
    assert selection.validation.false_accepts == 10 and selection.detector.threshold == 0.95
    assert not selection.meets_target_measured and "fewest false accepts" in selection.reason
    with pytest.raises(ValueError, match="non-empty"):
        select_operating_point(scored, GRID, [], [0.5], 1.0, 100.0)


def test_stream_report_reports_the_test_curve_at_the_selected_threshold() -> None:
    scored = _synthetic_streams()
    selection = select_operating_point(scored, GRID, [5], [0.5], 1.0, 100.0)
    curve = scored.curve(GRID, 5, 0.5)
    report = StreamReport(3600.0, 0, len(scored.positives), curve, 1.0, selection)
    assert report.operating_point.threshold == pytest.approx(0.5)
    assert report.as_dict()["selection"]["detector"]["smoothing_windows"] == 5
    # the test point's intervals, at the selection's level unless given
    assert report.bounds.level == 0.95 and report.bounds.keywords == len(scored.positives)
    expected = rate_interval(report.operating_point.false_accepts, 1.0, 0.95)
    assert report.bounds.fa_per_hour_upper == pytest.approx(expected.upper)
    assert report.as_dict()["operating_point_bounds"]["level"] == 0.95
    at_90 = StreamReport(3600.0, 0, len(scored.positives), curve, 1.0, selection, 0.9)
    assert at_90.bounds.level == 0.9 and at_90.bounds.fa_per_hour_upper < expected.upper


class _FakeClassifier:
    """Only what StreamingDetector.events needs from an MFCC classifier."""

    labels = LABELS

    def __init__(self) -> None:
        from kws_assets.core.features.mfcc import FeatureSpec
        from kws_assets.settings import AudioSettings, FeatureSettings

        self.spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())


def test_the_refractory_grid_stretches_with_the_window() -> None:
    """A keyword keeps a window's posterior up about as long as the window holds it: a 1.5-s
    phrase window gets 1.5x the refractory periods written for a 1-s window."""
    assert window_scaled([0.5, 1.0], 1.0) == [0.5, 1.0]
    assert window_scaled([0.5, 1.0], 1.5) == [0.75, 1.5]
    assert window_scaled([1.0], 2.0) == [2.0]
