"""The DET sweep: its bookkeeping, the threshold grid, and curves that count the detections a
real model makes."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.evaluation.det import (
    MATCH_TOLERANCE_S,
    SATURATED_THRESHOLDS,
    DetCurve,
    count_hits,
    threshold_grid,
)
from kws_assets.core.evaluation.operating_point import streaming_report
from kws_assets.core.evaluation.streams import Positive
from kws_assets.core.families import load_classifier
from kws_assets.core.model.detect import StreamingDetector
from kws_assets.core.ship.export import ClipClassifier
from kws_assets_tests.core.evaluation.tone_streams import UniformClassifier, tone_streams
from kws_assets_tests.tone_detector import SR, tone_artifact


@pytest.fixture(scope="module")
def classifier() -> ClipClassifier:
    return load_classifier(tone_artifact().folder)


def test_operating_point_is_the_lowest_frr_within_the_false_accept_budget() -> None:
    curve = DetCurve(
        thresholds=np.array([0.1, 0.5, 0.8, 0.95]),
        false_accepts=np.array([40, 3, 1, 0]),
        misses=np.array([0, 2, 5, 9]),
        negative_hours=2.0,
        positives=10,
    )
    np.testing.assert_allclose(curve.fa_per_hour, [20, 1.5, 0.5, 0])
    point = curve.at_fa_rate(1.0)
    assert (point.threshold, point.frr, point.fa_per_hour) == (0.8, 0.5, 0.5)
    assert curve.at_fa_rate(100).threshold == 0.1
    # no threshold reaches the target: the strictest one, showing how far off it is
    strict = DetCurve(np.array([0.5, 0.9]), np.array([9, 4]), np.array([1, 3]), 1.0, 5)
    assert strict.at_fa_rate(1.0).fa_per_hour == 4.0


def test_hits_need_the_right_keyword_near_the_right_time() -> None:
    positives = [Positive("a", 10.0, "1"), Positive("b", 20.0, "2"), Positive("a", 30.0, "3")]
    detections = [(9.7, "a"), (20.2, "a"), (29.0, "a"), (30.4, "a")]
    assert count_hits(detections, positives) == 2  # wrong keyword at 20 s, 29 s is too early
    assert count_hits([(10.0, "a")], [*positives, Positive("a", 10.2, "4")]) == 1


def test_hits_found_by_bisection_match_a_scan_of_every_detection() -> None:
    def scan(detections, positives, tolerance_s=MATCH_TOLERANCE_S):  # the definition itself
        used, hits = [False] * len(detections), 0
        for positive in positives:
            for i, (start, label) in enumerate(detections):
                near = abs(start - positive.start_s) <= tolerance_s
                if near and not used[i] and label == positive.label:
                    used[i], hits = True, hits + 1
                    break
        return hits

    rng = np.random.default_rng(5)
    for _ in range(200):
        detections = [
            (float(rng.choice([rng.uniform(0, 60), round(rng.uniform(0, 60), 1)])), str(label))
            for label in rng.choice(["a", "b"], size=int(rng.integers(0, 40)))
        ]  # in any order, some on the tolerance's edge
        positives = [
            Positive(str(rng.choice(["a", "b"])), round(float(rng.uniform(0, 60)), 1), str(i))
            for i in range(int(rng.integers(0, 15)))
        ]
        assert count_hits(detections, positives) == scan(detections, positives)


def test_det_curve_counts_the_detections_the_model_actually_makes(classifier) -> None:
    negative, positive, positives = tone_streams(3)
    detector = StreamingDetector(classifier, hop_ms=100, smoothing_windows=3, refractory_s=1.0)
    report = streaming_report(
        detector, negative, positive, positives, SR, threshold_steps=30, target_fa_per_hour=60.0
    )
    curve = report.curve
    assert curve.negative_hours == pytest.approx(120.0 / 3600)
    assert np.all(np.diff(curve.false_accepts) <= 0)  # stricter thresholds, fewer false accepts
    neg_post = detector.posteriors(negative, SR)
    pos_post = detector.posteriors(positive, SR)
    for index in (0, 10, 20, 29):  # every point is what the detector does at that threshold
        threshold = float(curve.thresholds[index])
        assert curve.false_accepts[index] == len(detector.events(neg_post, threshold))
        found = [(d.start_s, d.keyword) for d in detector.events(pos_post, threshold)]
        assert curve.misses[index] == len(positives) - count_hits(found, positives)
    # the real model finds most keywords at its operating point on this easy task
    assert report.operating_point.frr <= 0.25
    # a model whose outputs carry no information detects nothing: every keyword is missed
    blind = StreamingDetector(UniformClassifier(classifier), hop_ms=100)
    blind_report = streaming_report(blind, negative, positive, positives, SR, 30, 60.0)
    assert blind_report.operating_point.frr == 1.0
    assert blind_report.curve.false_accepts[-1] == 0
    summary = report.as_dict()
    assert summary["positives"] == 12 and len(summary["det_curve"]) == 30


def test_threshold_grid_reaches_into_saturated_scores() -> None:
    grid = threshold_grid(200)
    assert grid.size == 200 and np.all(np.diff(grid) > 0)
    assert grid[0] == pytest.approx(0.01) and grid[-1] == pytest.approx(0.99999)
    assert (grid > 0.999).sum() == len(SATURATED_THRESHOLDS)
    assert threshold_grid(3).size == 3
