"""One family evaluated on the shared material: accuracy from the audio through the classifier's
own front end, batches or one array alike, and the operating point selected on validation."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from kws_assets.core.evaluation.family import (
    STREAM_SETS,
    clip_batches,
    evaluate_families,
    evaluate_family,
    score_family_streams,
)
from kws_assets.core.evaluation.intervals import clopper_pearson, rate_interval
from kws_assets.core.features.mfcc import MfccExtractor, normalize
from kws_assets.core.model.training import classification_report
from kws_assets.core.ship.export import KwsClassifier
from kws_assets_tests.core.evaluation.conftest import FAMILIES, SETTINGS
from kws_assets_tests.tone_detector import LABELS, tone_artifact


def test_accuracy_is_the_classifiers_on_the_audio_and_matches_the_feature_table(
    tone_classifier, tone_test_clips, results
) -> None:
    """The test clips go through ``classify_clips``: the same MFCCs the feature table stores,
    so the accuracy is the one the table's features give."""
    clips, y = tone_test_clips
    table_features = MfccExtractor(tone_classifier.spec)(clips)
    probs = tone_classifier.classify_features(normalize(table_features, tone_classifier.spec))
    expected = classification_report(y, probs.argmax(axis=1), LABELS)
    for family in FAMILIES:
        assert results[family].family == family
        assert results[family].test.accuracy == pytest.approx(expected.accuracy)
        assert results[family].test.confusion == expected.confusion
        assert results[family].test.n == len(y)


def test_the_operating_point_is_selected_on_validation_and_reported_on_test(results) -> None:
    result = results[FAMILIES[0]]
    selection = result.stream.selected()
    assert selection.target_fa_per_hour == SETTINGS.target_fa_per_hour
    assert result.stream.operating_point.threshold == pytest.approx(
        selection.detector.threshold, abs=1e-4
    )
    assert result.operating_point == selection.detector
    assert set(result.pictures) == {"confusion_test", "confusion_unseen_voices", "det_curve"}
    assert result.unseen.n == 8 and result.latency_ms > 0
    summary = result.summary()
    assert summary["smoothing_at_target"] in SETTINGS.smoothing_grid
    # the test point's intervals come from its own counts, at the settings' level
    point, stream = result.stream.operating_point, result.stream
    fa = rate_interval(point.false_accepts, stream.negative_seconds / 3600.0, SETTINGS.confidence)
    frr = clopper_pearson(point.misses, stream.positives, SETTINGS.confidence)
    assert summary["fa_per_hour_upper_at_target"] == pytest.approx(fa.upper, abs=1e-4)
    assert summary["frr_lower_at_target"] == pytest.approx(frr.lower, abs=1e-4)
    assert summary["frr_upper_at_target"] == pytest.approx(frr.upper, abs=1e-4)
    assert summary["confidence"] == SETTINGS.confidence
    assert summary["target_met_on_validation"] == (
        summary["val_fa_per_hour_upper_at_target"] <= SETTINGS.target_fa_per_hour
    )
    assert summary["operating_point_usable"] == (summary["val_frr_at_target"] <= SETTINGS.max_frr)
    # one family's numbers do not depend on its name or on the others evaluated beside it (but
    # for the latency: a wall-clock measurement)
    other = results[FAMILIES[1]].summary()
    assert {k: v for k, v in summary.items() if k != "window_latency_ms"} == {
        k: v for k, v in other.items() if k != "window_latency_ms"
    }


def test_one_array_of_test_audio_is_one_batch(tone_classifier, material, tone_test_clips) -> None:
    clips, y = tone_test_clips
    single = evaluate_family(
        tone_classifier, "solo", SETTINGS, material, [LABELS[i] for i in y], clips
    )
    batched = evaluate_family(
        tone_classifier,
        "solo",
        SETTINGS,
        material,
        [LABELS[i] for i in y],
        clip_batches([str(i) for i in range(len(clips))], lambda uri: clips[int(uri)], 4),
    )
    assert single.test.confusion == batched.test.confusion
    with pytest.raises(ValueError, match="not classes of the artifact"):
        evaluate_family(tone_classifier, "solo", SETTINGS, material, ["yes"], clips[:1])


def test_clip_batches_read_every_clip_once_in_order() -> None:
    reads: list[str] = []

    def read(uri: str) -> np.ndarray:
        reads.append(uri)
        return np.full(3, float(uri), np.float32)

    batches = list(clip_batches([str(i) for i in range(5)], read, 2))
    assert [b.shape for b in batches] == [(2, 3), (2, 3), (1, 3)]
    assert reads == ["0", "1", "2", "3", "4"]
    assert np.concatenate(batches)[:, 0].tolist() == [0, 1, 2, 3, 4]


def _loaders() -> dict:
    """Each family's classifier as a function that loads it: a worker process must open its own
    inference session (one opened before the fork can hang in the worker)."""
    return dict.fromkeys(
        FAMILIES, functools.partial(KwsClassifier.load_mfcc, tone_artifact().folder)
    )


def test_streams_scored_on_two_workers_are_those_scored_here(material) -> None:
    loaders = _loaders()
    here = score_family_streams(loaders, SETTINGS.hop_ms, material, workers=1)
    pooled = score_family_streams(loaders, SETTINGS.hop_ms, material, workers=2)
    assert list(pooled) == list(FAMILIES)
    for family in FAMILIES:
        for which in STREAM_SETS:
            a, b = getattr(here[family], which), getattr(pooled[family], which)
            np.testing.assert_array_equal(a.negative.probs, b.negative.probs)
            np.testing.assert_array_equal(a.positive.probs, b.positive.probs)
            assert a.negative_seconds == b.negative_seconds and a.positives == b.positives
        assert pooled[family].seconds > 0


def test_families_evaluated_on_two_workers_report_what_one_reports(
    material, tone_test_clips, results
) -> None:
    clips, y = tone_test_clips
    pooled = evaluate_families(
        _loaders(),
        SETTINGS,
        material,
        [LABELS[i] for i in y],
        lambda: iter([clips[:5], clips[5:]]),
        workers=2,
    )
    assert list(pooled) == list(results)
    timed = {"window_latency_ms"}  # a measured time, the same only by chance

    def untimed(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in timed}

    for family in FAMILIES:
        assert untimed(pooled[family].summary()) == untimed(results[family].summary())
        a, b = pooled[family].as_dict(), results[family].as_dict()
        assert untimed(a.pop("summary")) == untimed(b.pop("summary")) and a == b
