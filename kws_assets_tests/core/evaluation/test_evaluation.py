"""Evaluation: DET sweep bookkeeping, streams, and numbers that come from the model's outputs."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.evaluation import evaluation as E
from kws_assets.core.families import load_classifier
from kws_assets.core.model.detect import StreamingDetector
from kws_assets.core.ship.export import ClipClassifier
from kws_assets_tests.tone_detector import SR, tone_artifact, tone_stream


@pytest.fixture(scope="module")
def classifier() -> ClipClassifier:
    return load_classifier(tone_artifact().folder)


class UniformClassifier:
    """Wraps a classifier but answers every window with equal probabilities."""

    def __init__(self, inner: ClipClassifier) -> None:
        self.spec, self.labels = inner.spec, inner.labels

    def classify_features(self, x: np.ndarray) -> np.ndarray:
        return np.full((len(x), len(self.labels)), 1.0 / len(self.labels), dtype=np.float32)


def test_operating_point_is_the_lowest_frr_within_the_false_accept_budget() -> None:
    curve = E.DetCurve(
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
    strict = E.DetCurve(np.array([0.5, 0.9]), np.array([9, 4]), np.array([1, 3]), 1.0, 5)
    assert strict.at_fa_rate(1.0).fa_per_hour == 4.0


def test_hits_need_the_right_keyword_near_the_right_time() -> None:
    positives = [E.Positive("a", 10.0, "1"), E.Positive("b", 20.0, "2"), E.Positive("a", 30.0, "3")]
    detections = [(9.7, "a"), (20.2, "a"), (29.0, "a"), (30.4, "a")]
    assert E.count_hits(detections, positives) == 2  # wrong keyword at 20 s, 29 s is too early
    assert E.count_hits([(10.0, "a")], [*positives, E.Positive("a", 10.2, "4")]) == 1


def test_positives_are_embedded_where_they_are_reported() -> None:
    rng = np.random.default_rng(0)
    clips = [(np.full(SR, 0.5, np.float32), "a", "c1"), (np.full(SR, -0.5, np.float32), "b", "c2")]
    filler = [np.zeros(3 * SR, np.float32)]
    audio, positives = E.embed_positives(clips, filler, SR, rng)
    assert [p.label for p in positives] == ["a", "b"]
    for (clip, _, _), positive in zip(clips, positives, strict=True):
        start = round(positive.start_s * SR)
        np.testing.assert_array_equal(audio[start : start + SR], clip)
        assert audio[start - 1] == 0.0  # preceded by filler
    gap = positives[1].start_s - positives[0].start_s - 1.0
    assert E.POSITIVE_LEAD_S[0] <= gap <= E.POSITIVE_LEAD_S[1]


def test_negative_stream_has_the_requested_length_and_counts_reuse() -> None:
    rng = np.random.default_rng(1)
    pieces = [np.full(SR // 2, 0.1, np.float32), np.full(SR, 0.2, np.float32)]
    audio, reuse = E.concatenate_pieces(pieces, 20.0, SR, rng)
    assert audio.size == 20 * SR and reuse >= 5
    audio, reuse = E.concatenate_pieces([np.zeros(30 * SR, np.float32)], 2.0, SR, rng)
    assert reuse == 0
    with pytest.raises(ValueError):
        E.concatenate_pieces([np.zeros(0, np.float32)], 1.0, SR, rng)


def _streams(seed: int):
    rng = np.random.default_rng(seed)
    negative_events = [(float(t), "_unknown_") for t in np.arange(1.0, 118.0, 3.0)]
    negative = tone_stream(negative_events, 120.0, seed)
    clips = []
    for i in range(12):
        label = "low_tone" if i % 2 else "high_tone"
        clip = tone_stream([(0.35, label)], 1.0, seed + i)
        clips.append((clip, label, f"c{i}"))
    filler = [tone_stream([(0.5, "_unknown_")], 2.0, seed + 100)]
    positive, positives = E.embed_positives(clips, filler, SR, rng)
    return negative, positive, positives


def test_det_curve_counts_the_detections_the_model_actually_makes(classifier) -> None:
    negative, positive, positives = _streams(3)
    detector = StreamingDetector(classifier, hop_ms=100, smoothing_windows=3, refractory_s=1.0)
    report = E.streaming_report(
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
        assert curve.misses[index] == len(positives) - E.count_hits(found, positives)
    # the real model finds most keywords at its operating point on this easy task
    assert report.operating_point.frr <= 0.25
    # a model whose outputs carry no information detects nothing: every keyword is missed
    blind = StreamingDetector(UniformClassifier(classifier), hop_ms=100)
    blind_report = E.streaming_report(blind, negative, positive, positives, SR, 30, 60.0)
    assert blind_report.operating_point.frr == 1.0
    assert blind_report.curve.false_accepts[-1] == 0
    png = E.det_png(curve, 60.0)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    summary = report.as_dict()
    assert summary["positives"] == 12 and len(summary["det_curve"]) == 30


def test_noise_floor_is_at_its_level_everywhere_and_leaves_the_input_alone() -> None:
    silence = np.zeros(E.NOISE_FLOOR_BLOCK_SAMPLES * 2 + 12345, dtype=np.float32)
    floored = E.add_noise_floor(silence, -60.0, np.random.default_rng(0))
    assert floored.dtype == np.float32 and floored.shape == silence.shape
    assert not silence.any()  # a new array
    for start in (0, E.NOISE_FLOOR_BLOCK_SAMPLES, 2 * E.NOISE_FLOOR_BLOCK_SAMPLES):
        piece = floored[start : start + E.NOISE_FLOOR_BLOCK_SAMPLES].astype(np.float64)
        assert 20 * np.log10(np.sqrt(np.mean(piece**2))) == pytest.approx(-60.0, abs=0.5)


def test_threshold_grid_reaches_into_saturated_scores() -> None:
    grid = E.threshold_grid(200)
    assert grid.size == 200 and np.all(np.diff(grid) > 0)
    assert grid[0] == pytest.approx(0.01) and grid[-1] == pytest.approx(0.99999)
    assert (grid > 0.999).sum() == len(E.SATURATED_THRESHOLDS)
    assert E.threshold_grid(3).size == 3
