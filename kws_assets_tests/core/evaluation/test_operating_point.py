"""Operating-point selection on synthetic posterior streams, and the test streams' report at the
selected point."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.evaluation.det import count_hits
from kws_assets.core.evaluation.operating_point import (
    ScoredStreams,
    StreamReport,
    select_operating_point,
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
    selection = select_operating_point(scored, GRID, [1, 3, 5], [0.5, 1.0], 1.0, 100.0)
    assert selection.meets_target
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


def test_an_unreachable_target_is_flagged_with_the_fewest_false_accepts() -> None:
    scored = _synthetic_streams()
    selection = select_operating_point(scored, GRID, [1], [0.5, 1.0], 1.0, 100.0)
    assert not selection.meets_target
    assert selection.validation.false_accepts == 10 and selection.detector.threshold == 0.95
    with pytest.raises(ValueError, match="non-empty"):
        select_operating_point(scored, GRID, [], [0.5], 1.0, 100.0)


def test_stream_report_reports_the_test_curve_at_the_selected_threshold() -> None:
    scored = _synthetic_streams()
    selection = select_operating_point(scored, GRID, [5], [0.5], 1.0, 100.0)
    curve = scored.curve(GRID, 5, 0.5)
    report = StreamReport(3600.0, 0, len(scored.positives), curve, 1.0, selection)
    assert report.operating_point.threshold == pytest.approx(0.5)
    assert report.as_dict()["selection"]["detector"]["smoothing_windows"] == 5


class _FakeClassifier:
    """Only what StreamingDetector.events needs from an MFCC classifier."""

    labels = LABELS

    def __init__(self) -> None:
        from kws_assets.core.features.mfcc import FeatureSpec
        from kws_assets.settings import AudioSettings, FeatureSettings

        self.spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
