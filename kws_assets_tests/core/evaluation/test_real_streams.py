"""A set's clips as one stream and every family's detector on it at its shipped point: the
stream is seeded by the set, has its noise floor and its keywords; the tone model finds the tone
keywords among the other tones, every detection is a hit or a false accept, and the intervals
bracket what was measured; a family without a point gets no row."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from kws_assets.core.audio.io import fit_to_length, resample
from kws_assets.core.corpus.real_sources import RealClips
from kws_assets.core.evaluation import peers
from kws_assets.core.evaluation.real_streams import (
    BESIDE_PEERS_COLUMNS,
    STREAM_SUMMARY_COLUMNS,
    beside_peers,
    clip_stream,
    score_peer_streams,
    score_stream,
    score_streams,
    shipped_points,
)
from kws_assets.core.model.detect import DetectorOperatingPoint
from kws_assets.core.ship.export import KwsClassifier, write_operating_point
from kws_assets.core.speech import tts
from kws_assets.settings import EvalSettings
from kws_assets_tests.core.evaluation.tone_streams import UniformClassifier
from kws_assets_tests.tone_detector import KEYWORDS, LABELS, SR, labelled_clips

POINT = DetectorOperatingPoint(threshold=0.5, smoothing_windows=3, refractory_s=1.0)


def _tone_set(name: str, seed: int) -> RealClips:
    clips, y = labelled_clips(6, seed=seed)
    labels = [LABELS[i] for i in y]
    names = [f"{name}{i}" for i in range(len(y))]
    return RealClips(name, SR, clips, labels, ["someone"] * len(y), names, labels)


def test_a_set_becomes_one_stream_seeded_by_its_name_with_a_noise_floor() -> None:
    clips = _tone_set("tones", 80)
    stream = clip_stream(clips, -60.0, seed=0)
    assert sorted(p.clip_id for p in stream.positives) == sorted(
        n for n, label in zip(clips.names, clips.labels, strict=True) if label in KEYWORDS
    )
    assert stream.hours == pytest.approx(len(stream.samples) / SR / 3600)
    assert np.count_nonzero(stream.samples == 0.0) < 10  # no digital silence in the pauses
    np.testing.assert_array_equal(clip_stream(clips, -60.0, seed=0).samples, stream.samples)
    renamed = RealClips("other", SR, clips.samples, clips.labels, clips.speakers, clips.names, [])
    assert clip_stream(renamed, -60.0, seed=0).positives != stream.positives


def test_the_tone_model_finds_its_keywords_and_the_counts_add_up(tone_classifier) -> None:
    tones = _tone_set("tones", 81)
    stream = clip_stream(tones, -60.0, seed=0)
    score = score_stream("tone", tone_classifier, POINT, stream, level=0.95)
    row = score.as_row()
    assert row["keywords"] == len(stream.positives) == 12
    # a model right on the clips finds them in the stream: at most two of those it names alone
    # are missed (the trained tone model varies with the training code's random draws)
    named = tone_classifier.classify_clips(tones.samples).argmax(axis=1)
    right = sum(
        LABELS[k] == label
        for k, label in zip(named, tones.labels, strict=True)
        if label in KEYWORDS
    )
    assert right >= 10 and score.hits >= right - 2, (right, score)
    assert score.hits + score.measured.misses == row["keywords"]
    assert score.hits + row["false_accepts"] == score.detections
    assert row["fa_per_hour"] == pytest.approx(row["false_accepts"] / stream.hours, rel=1e-3)
    assert row["frr_lower"] <= row["frr"] <= row["frr_upper"] < 1.0
    assert row["fa_per_hour_lower"] <= row["fa_per_hour"] <= row["fa_per_hour_upper"]
    assert row["level"] == 0.95 and row["threshold"] == 0.5 and row["refractory_s"] == 1.0


def test_a_detector_that_never_fires_misses_every_keyword(tone_classifier) -> None:
    stream = clip_stream(_tone_set("tones", 82), -60.0, seed=0)
    row = score_stream("silent", UniformClassifier(tone_classifier), POINT, stream, 0.95).as_row()
    assert (row["hits"], row["frr"], row["false_accepts"], row["fa_per_hour"]) == (0, 1.0, 0, 0)
    assert row["frr_upper"] == 1.0 and 0.0 < row["frr_lower"] < 1.0
    assert row["fa_per_hour_lower"] == 0.0 and row["fa_per_hour_upper"] > 0.0


def test_only_families_with_a_shipped_point_are_scored_on_every_set(
    tone_classifier: KwsClassifier, tmp_path
) -> None:
    write_operating_point(tmp_path / "first", POINT, {"family": "first"})
    points = shipped_points(tmp_path, ["first", "second"])
    assert points == {"first": POINT}
    sets = [_tone_set("a", 83), _tone_set("b", 84), _tone_set("empty", 85)]
    sets[2] = RealClips("empty", SR, np.zeros((0, SR), np.float32), [], [], [], [])
    scores = score_streams(
        {"first": tone_classifier, "second": tone_classifier},
        points,
        sets,
        EvalSettings(confidence=0.9),
    )
    assert [(s.family, s.source) for s in scores] == [("first", "a"), ("first", "b")]
    assert all(set(STREAM_SUMMARY_COLUMNS) <= set(s.as_row()) for s in scores)
    assert {s.bounds.level for s in scores} == {0.9}


def test_a_stream_without_keywords_has_false_accepts_but_no_frr(tone_classifier) -> None:
    clips = _tone_set("tones", 86)
    unknown = [i for i, label in enumerate(clips.labels) if label == "_unknown_"]
    names = [clips.names[i] for i in unknown]
    words = RealClips(
        "words", SR, clips.samples[unknown], ["_unknown_"] * len(unknown), [], names, []
    )
    stream = clip_stream(words, -60.0, seed=0)
    row = score_stream("tone", tone_classifier, POINT, stream, 0.95).as_row()
    assert (row["keywords"], row["hits"], row["frr"]) == (0, 0, None)
    assert (row["frr_lower"], row["frr_upper"]) == (0.0, 1.0)
    assert row["fa_per_hour"] == pytest.approx(row["false_accepts"] / stream.hours, rel=1e-3)


def test_the_counts_per_keyword_add_up_to_the_streams(tone_classifier) -> None:
    stream = clip_stream(_tone_set("tones", 81), -60.0, seed=0)
    score = score_stream("tone", tone_classifier, POINT, stream, level=0.95)
    assert set(score.by_keyword) == set(KEYWORDS)
    assert sum(n for n, _, _ in score.by_keyword.values()) == len(stream.positives)
    assert sum(h for _, h, _ in score.by_keyword.values()) <= score.hits
    rows = score.keyword_rows()
    assert [r["keyword"] for r in rows] == list(KEYWORDS)
    for row in rows:
        n, hits, fa = score.by_keyword[str(row["keyword"])]
        assert (row["system"], row["set"], row["positives"]) == ("tone", "tones", n)
        assert (row["misses"], row["false_accepts"]) == (n - hits, fa)
        assert row["frr_lower"] <= row["frr"] <= row["frr_upper"]
        assert row["fa_per_hour_lower"] <= row["fa_per_hour"] <= row["fa_per_hour_upper"]


def _spoken_set(name: str) -> RealClips:
    """espeak-ng's "alexa" three times among other words, 1-s clips at 16 kHz."""
    words = ["alexa", "table", "alexa", "window", "garden", "alexa"]
    clips = []
    for i, word in enumerate(words):
        synthesis = tts.synthesize(word, voice="en-us", rate=150, pitch=40 + 10 * i)
        clips.append(fit_to_length(resample(synthesis.samples, synthesis.sample_rate, SR), SR))
    labels = [w if w == "alexa" else "_unknown_" for w in words]
    names = [f"{name}{i}" for i in range(len(words))]
    return RealClips(name, SR, np.stack(clips), labels, ["espeak"] * len(words), names, words)


def test_the_pretrained_models_of_a_keyword_run_on_the_same_stream() -> None:
    settings = EvalSettings()
    spoken = _spoken_set("spoken")
    rows = score_peer_streams(["alexa", "yes"], [spoken], settings, clip_seconds=1.0)
    assert sorted(r["system"] for r in rows) == [peers.MICROWAKEWORD, peers.OPENWAKEWORD]
    hours = clip_stream(spoken, settings.noise_floor_dbfs, settings.seed).hours
    for row in rows:
        assert (row["keyword"], row["set"], row["positives"]) == ("alexa", "spoken", 3)
        assert row["negative_hours"] == pytest.approx(hours, abs=1e-4)
        assert row["misses"] <= 1  # espeak-ng's "alexa" fires both (test_peers)
        assert row["frr_lower"] <= row["frr"] <= row["frr_upper"]
    assert score_peer_streams(["yes", "no"], [spoken], settings, 1.0) == []
    assert beside_peers([], ["yes", "no"], [spoken], settings, 1.0) == []


def test_beside_the_peers_come_the_families_rows_of_the_same_keyword(tone_classifier) -> None:
    settings = EvalSettings()
    spoken = _spoken_set("spoken")
    stream = clip_stream(spoken, settings.noise_floor_dbfs, settings.seed)
    score = score_stream("tone", tone_classifier, POINT, stream, level=0.95)
    # the tone model has no "alexa": its keywords are not a peer's phrase, so no row of its
    assert beside_peers([score], ["alexa"], [spoken], settings, 1.0) == score_peer_streams(
        ["alexa"], [spoken], settings, 1.0
    )
    keyworded = dataclasses.replace(score, by_keyword={"alexa": (3, 2, 1)})
    rows = beside_peers([keyworded], ["alexa"], [spoken], settings, 1.0)
    systems = [r["system"] for r in rows]  # the families first, then the peers
    assert systems == ["tone", peers.OPENWAKEWORD, peers.MICROWAKEWORD]
    assert (rows[0]["misses"], rows[0]["false_accepts"], rows[0]["positives"]) == (1, 1, 3)
    assert set(BESIDE_PEERS_COLUMNS) <= set(rows[0]) and set(BESIDE_PEERS_COLUMNS) <= set(rows[1])
