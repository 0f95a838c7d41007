"""Streaming detection: stream features equal clip features, smoothing, events, refractory period,
and the real int8 tone model finding its keywords in a long recording."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.families import load_classifier
from kws_assets.core.features.mfcc import FeatureSpec, features_for_clips
from kws_assets.core.model.detect import (
    DEFAULT_REFRACTORY_S,
    Detection,
    EmbeddingStreamer,
    StreamingDetector,
    find_events,
    smooth_posteriors,
    stream_frames,
    window_features,
    window_latency_ms,
)
from kws_assets.core.ship.export import ClipClassifier
from kws_assets.settings import FeatureSettings, KwsConfig
from kws_assets_tests.tone_detector import SR, tone_artifact, tone_stream


@pytest.fixture(scope="module")
def classifier() -> ClipClassifier:
    return load_classifier(tone_artifact().folder)


def test_stream_windows_equal_the_features_of_the_cut_out_clips(classifier) -> None:
    spec = classifier.spec
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(3.3 * SR)) * 0.1).astype(np.float32)
    stride = 5  # frames: 100 ms
    windows = window_features(stream_frames(audio, spec, chunk_frames=37), spec, stride)
    starts = range(0, audio.size - spec.clip_samples + 1, stride * spec.hop_length)
    clips = [audio[s : s + spec.clip_samples] for s in starts]
    expected = features_for_clips(clips, spec)
    assert windows.shape[1:] == expected.shape[1:]
    np.testing.assert_allclose(windows[: len(clips)], expected, atol=2e-4)


def test_smoothing_is_a_causal_moving_average() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    smoothed = smooth_posteriors(probs, 2)
    np.testing.assert_allclose(smoothed, [[1, 0], [0.5, 0.5], [0.5, 0.5], [1, 0]])
    np.testing.assert_array_equal(smooth_posteriors(probs, 1), probs)


def test_events_fire_once_per_bump_and_respect_the_refractory_period() -> None:
    scores = np.zeros((60, 2), dtype=np.float32)
    scores[10:14, 0] = [0.6, 0.9, 0.95, 0.7]  # one bump: one event, at its peak
    scores[30:33, 1] = 0.8
    scores[36:38, 1] = 0.85  # 6 windows after the second bump's trigger
    scores[50, 0] = 0.4  # below threshold
    events = find_events(scores, threshold=0.5, refractory_windows=10)
    assert events == [(12, 0, pytest.approx(0.95)), (30, 1, pytest.approx(0.8))]
    events = find_events(scores, threshold=0.5, refractory_windows=5)
    assert [(w, c) for w, c, _ in events] == [(12, 0), (30, 1), (36, 1)]
    assert find_events(scores, threshold=0.99, refractory_windows=5) == []


def _events_one_at_a_time(
    smoothed: np.ndarray, threshold: float, refractory_windows: int
) -> list[tuple[int, int, float]]:
    """The detection rule written out a detection at a time (find_events' reference)."""
    best = smoothed.max(axis=1)
    above = np.flatnonzero(best >= threshold)
    events: list[tuple[int, int, float]] = []
    next_allowed, position = 0, 0
    while position < above.size:
        trigger = int(above[position])
        if trigger < next_allowed:
            position = int(np.searchsorted(above, next_allowed))
            continue
        column = int(np.argmax(smoothed[trigger]))
        end = min(len(smoothed), trigger + max(refractory_windows, 1))
        track = smoothed[trigger:end, column]
        below = np.flatnonzero(track < threshold)
        if below.size:
            track = track[: below[0]]
        peak = trigger + int(np.argmax(track))
        events.append((peak, column, float(smoothed[peak, column])))
        next_allowed = trigger + max(refractory_windows, 1)
        position += 1
    return events


@pytest.mark.parametrize("refractory", [0, 1, 3, 17])
def test_events_are_those_of_the_rule_applied_one_detection_at_a_time(refractory: int) -> None:
    rng = np.random.default_rng(refractory)
    probs = rng.dirichlet(np.full(4, 0.3), size=3000).astype(np.float32)
    smoothed = smooth_posteriors(probs, 3)[:, :3]
    for threshold in (0.05, 0.3, 0.6, 0.9, 0.999):
        expected = _events_one_at_a_time(smoothed, threshold, refractory)
        assert find_events(smoothed, threshold, refractory) == expected
    tail = smoothed[-5:]  # a track cut by the end of the recording
    assert find_events(tail, 0.0, 50) == _events_one_at_a_time(tail, 0.0, 50)


def test_the_int8_model_finds_its_keywords_in_a_long_recording(classifier) -> None:
    truth = [
        (2.0, "low_tone"),
        (5.0, "high_tone"),
        (8.0, "_unknown_"),
        (11.0, "low_tone"),
        (14.5, "high_tone"),
    ]
    audio = tone_stream(truth, 17.0, seed=1)
    detector = StreamingDetector(
        classifier, threshold=0.45, hop_ms=100, smoothing_windows=3, refractory_s=1.0
    )
    detections = detector.detect(audio, SR)
    keywords = [(t, k) for t, k in truth if k != "_unknown_"]
    assert [d.keyword for d in detections] == [k for _, k in keywords]
    for detection, (start, _) in zip(detections, keywords, strict=True):
        assert detection.start_s <= start and start + 0.3 <= detection.end_s  # window holds it
        assert detection.end_s - detection.start_s == pytest.approx(1.0)
        assert 0.45 <= detection.score <= 1.0
    # resampled input gives the same detections
    from kws_assets.core.audio.io import resample

    again = detector.detect(resample(audio, SR, 8000), 8000)
    assert [d.keyword for d in again] == [d.keyword for d in detections]


def test_a_keyword_at_the_very_start_is_still_found(classifier) -> None:
    audio = tone_stream([(0.05, "high_tone")], 2.0, seed=2)
    detections = StreamingDetector(classifier, threshold=0.45).detect(audio, SR)
    assert [d.keyword for d in detections] == ["high_tone"]
    assert detections[0].start_s < 0.05  # the window started before the recording did


def test_detector_rejects_bad_settings_and_reports_latency(classifier) -> None:
    with pytest.raises(ValueError):
        StreamingDetector(classifier, threshold=0.0)
    with pytest.raises(ValueError):
        StreamingDetector(classifier, smoothing_windows=0)
    assert Detection("x", 1.23456, 2.23456, 0.5).as_dict() == {
        "start": 1.235,
        "end": 2.235,
        "keyword": "x",
        "score": 0.5,
    }
    assert 0 < window_latency_ms(classifier, repeats=5) < 1000


class _PhraseClassifier:
    """What a detector reads of a classifier before it classifies: labels and the clip spec."""

    labels = ("_silence_", "_unknown_", "hey jarvis")
    spec = FeatureSpec.from_settings(FeatureSettings(), KwsConfig(keywords=["hey jarvis"]).audio)


def test_the_window_and_the_default_refractory_follow_the_phrase(classifier) -> None:
    word = StreamingDetector(classifier)
    assert word.window_s == 1.0 and word.refractory_s == DEFAULT_REFRACTORY_S == 1.0
    phrase = StreamingDetector(_PhraseClassifier())
    assert phrase.window_s == 1.5 and phrase.refractory_s == 1.5
    assert StreamingDetector(_PhraseClassifier(), refractory_s=0.3).refractory_s == 0.3
    # the streamed windows are phrase windows: as many frames as the clip
    frames = stream_frames(np.zeros(3 * SR, np.float32), phrase.spec)
    windows = window_features(frames, phrase.spec, phrase.stride_frames)
    assert windows.shape[1] == phrase.spec.n_frames == 74


def test_whole_stream_embeddings_equal_the_clip_front_end() -> None:
    """On audio of one context length whose level never reaches the top_db floor, the streamed
    embeddings are the clip front end's (both graphs are frame-local)."""
    from kws_assets.core.features.speech_embedding import SpeechEmbeddingFrontEnd

    front_end = SpeechEmbeddingFrontEnd(threads=1)
    rng = np.random.default_rng(3)
    audio = (0.05 * rng.standard_normal(front_end.spec.context_samples)).astype(np.float32)
    int16 = np.clip(np.rint(audio * 32768.0), -32768, 32767)[None, :]
    expected = front_end.embed_mel(front_end.mel(int16))[0]
    streamed = EmbeddingStreamer(front_end, threads=1)(audio)
    assert streamed.shape == expected.shape == front_end.spec.shape
    np.testing.assert_allclose(streamed, expected, atol=1e-4)
    # a longer stream: the frames of a stretch are that stretch's frames
    longer = (0.05 * rng.standard_normal(4 * front_end.spec.context_samples)).astype(np.float32)
    whole = EmbeddingStreamer(front_end, threads=1)(longer)
    offset = 10
    part = EmbeddingStreamer(front_end, threads=1)(
        longer[offset * 1280 : offset * 1280 + 2 * 32000]
    )
    np.testing.assert_allclose(whole[offset : offset + len(part)], part, atol=1e-4)
