"""Operating-point selection on synthetic posterior streams, the shipped operating_point.json, and
the whole-stream speech_embedding front end."""

from __future__ import annotations

import json

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
    EmbeddingStreamer,
    StreamingDetector,
    StreamPosteriors,
)
from kws_assets.core.ship.export import (
    OPERATING_POINT_FILE,
    read_operating_point,
    write_operating_point,
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


def test_operating_point_file_round_trips_and_bad_files_are_clear(tmp_path) -> None:
    point = DetectorOperatingPoint(0.93, 5, 0.5, 80.0)
    path = write_operating_point(tmp_path, point, {"family": "mfcc", "target_fa_per_hour": 1.0})
    assert path == tmp_path / OPERATING_POINT_FILE
    assert read_operating_point(tmp_path) == point == read_operating_point(path)
    assert json.loads(path.read_text())["selected"]["family"] == "mfcc"
    (tmp_path / "bare").mkdir()
    assert read_operating_point(tmp_path / "bare") is None  # a folder without one
    path.write_text(json.dumps({"threshold": 1.5}))
    with pytest.raises(ValueError, match="threshold must lie"):
        read_operating_point(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not JSON"):
        read_operating_point(tmp_path)


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
