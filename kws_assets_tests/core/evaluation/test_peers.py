"""The pretrained peers in their own runtimes (openWakeWord's ONNX models, microWakeWord's
TFLite models), and the counting every system of the shoot-out shares."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.audio.io import colored_noise, resample, scale_to_dbfs
from kws_assets.core.evaluation import peers
from kws_assets.core.speech import tts

SR = peers.SAMPLE_RATE


@pytest.fixture(scope="module")
def models() -> list[peers.PeerModel]:
    return peers.pretrained_models()


def spoken(phrase: str) -> np.ndarray:
    """``phrase`` by espeak-ng (en-us, 150 wpm) between a second of silence before and 1.5 s
    after: what a peer must fire on once."""
    synthesis = tts.synthesize(phrase, voice="en-us", rate=150, pitch=50)
    x = resample(synthesis.samples, synthesis.sample_rate, SR)
    return np.concatenate([np.zeros(SR, np.float32), x, np.zeros(SR * 3 // 2, np.float32)])


def test_the_installed_wheels_ship_the_phrases_with_their_operating_points(models) -> None:
    names = {(m.system, peers.phrase_key(m.phrase)) for m in models}
    for phrase in ("alexa", "hey_jarvis", "hey_mycroft"):
        assert (peers.OPENWAKEWORD, phrase) in names and (peers.MICROWAKEWORD, phrase) in names
    assert (peers.MICROWAKEWORD, "okay_nabu") in names
    assert (peers.OPENWAKEWORD, "hey_rhasspy") in names
    assert not any(peers.phrase_key(m.phrase) == "timer" for m in models)  # multi-class
    for m in models:
        assert m.path.is_file()
        if m.system == peers.OPENWAKEWORD:
            assert (m.threshold, m.sliding_window) == (0.5, 1)
        else:  # the v2 manifests: cutoffs 0.85-0.97 over 5 scores
            assert 0.8 <= m.threshold < 1.0 and m.sliding_window == 5
    jarvis = peers.peers_for("Hey  Jarvis", models)
    assert sorted(m.system for m in jarvis) == [peers.MICROWAKEWORD, peers.OPENWAKEWORD]
    assert peers.peers_for("hey_jarvis", models) == jarvis
    assert peers.peers_for("yes", models) == []


@pytest.mark.parametrize(
    ("system", "phrase"),
    [
        (peers.OPENWAKEWORD, "alexa"),
        (peers.OPENWAKEWORD, "hey jarvis"),
        (peers.MICROWAKEWORD, "alexa"),
        (peers.MICROWAKEWORD, "hey mycroft"),
        (peers.MICROWAKEWORD, "okay nabu"),
    ],
)
def test_a_pretrained_model_fires_once_on_its_own_phrase(models, system, phrase) -> None:
    # (espeak-ng's "hey mycroft" does not fire openWakeWord, nor its "hey jarvis"
    # microWakeWord: a peer need not hear every voice, so those are not asserted)
    (model,) = [m for m in peers.peers_for(phrase, models) if m.system == system]
    audio = spoken(phrase)
    track = peers.peer_scores([model], audio)[model]
    expected_hop = 0.08 if system == peers.OPENWAKEWORD else 0.03
    assert track.hop_s == pytest.approx(expected_hop, abs=1e-6)
    assert track.times_s[-1] <= len(audio) / SR + 1e-9
    fired = peers.track_events(
        track, model.threshold, peers.PEER_REFRACTORY_S, model.system == peers.MICROWAKEWORD
    )
    assert len(fired) == 1
    assert 1.0 <= fired[0] <= len(audio) / SR  # after the phrase starts


def test_the_peers_stay_quiet_on_silence_and_noise(models) -> None:
    rng = np.random.default_rng(0)
    noise = scale_to_dbfs(colored_noise("pink", SR * 12, rng), -30.0)
    silence = np.zeros(SR * 5, np.float32)
    for audio in (noise, silence):
        for model, track in peers.peer_scores(models, audio).items():
            assert track.scores.size
            assert float(track.scores.max()) < model.threshold, model.name


def test_each_recording_gets_a_fresh_runtime(models) -> None:
    """A recording scores the same alone and right after another one: no buffer or streaming
    state carries over."""
    chosen = peers.peers_for("alexa", models)
    audio = spoken("alexa")
    first = peers.peer_scores(chosen, audio)
    peers.peer_scores(chosen, spoken("hey jarvis"))
    again = peers.peer_scores(chosen, audio)
    for model in chosen:
        np.testing.assert_array_equal(first[model].scores, again[model].scores)
    with pytest.raises(ValueError):
        peers.openwakeword_scores([m for m in chosen if m.system == peers.MICROWAKEWORD], audio)


def track(scores: list[float], hop: float = 0.1) -> peers.ScoreTrack:
    return peers.ScoreTrack(np.arange(1, len(scores) + 1) * hop, np.asarray(scores, np.float32))


def test_events_respect_the_threshold_rule_and_the_refractory_period() -> None:
    t = track([0, 0.5, 0.9, 0.2, 0.6, 0, 0, 0, 0, 0, 0.7, 0])
    # no refractory period: every hop at or above the threshold is a detection
    np.testing.assert_allclose(peers.track_events(t, 0.5, 0.0), [0.2, 0.3, 0.5, 1.1])
    # 0.5 s: the hops after a trigger are blocked; the detection is placed at its peak (0.9)
    np.testing.assert_allclose(peers.track_events(t, 0.5, 0.5), [0.3, 1.1])
    np.testing.assert_allclose(peers.track_events(t, 0.5, 2.0), [0.3])
    np.testing.assert_allclose(peers.track_events(t, 0.5, 0.0, strict=True), [0.3, 0.5, 1.1])
    assert peers.track_events(t, 0.95, 0.0).size == 0


def test_a_detection_finds_at_most_one_phrase_near_it() -> None:
    phrases = [peers.Phrase("a", 1.0, 2.0), peers.Phrase("a", 5.0, 6.0)]
    assert peers.count_phrase_hits(np.array([0.5]), phrases) == 0  # before it starts
    assert peers.count_phrase_hits(np.array([2.0 + peers.HIT_TAIL_S]), phrases) == 1
    assert peers.count_phrase_hits(np.array([3.6]), phrases) == 0  # past the tail
    assert peers.count_phrase_hits(np.array([1.5, 1.7, 5.2]), phrases) == 2
    assert peers.count_phrase_hits(np.zeros(0), phrases) == 0


def test_counts_intervals_and_the_sweep_agree() -> None:
    # two negative recordings, 360 s together (0.1 h); one false accept above 0.8, two above 0.6
    negatives = [track([0] * 10 + [0.7] + [0] * 1789), track([0] * 5 + [0.9] + [0] * 1794)]
    positive = track([0] * 10 + [0.95] + [0] * 40 + [0.65] + [0] * 10)
    placed = [peers.Phrase("a", 0.8, 1.2), peers.Phrase("a", 5.0, 5.3)]
    tracks = peers.DetectorTracks(negatives, 360.0, [(positive, placed)], refractory_s=1.0)
    assert tracks.positive_count == 2
    shipped = tracks.at(0.6, 0.95)
    assert (shipped.false_accepts, shipped.misses) == (2, 0)
    assert shipped.fa_per_hour == pytest.approx(20.0) and shipped.frr == 0.0
    d = shipped.as_dict()
    assert d["fa_per_hour_lower"] < 20.0 < d["fa_per_hour_upper"] and d["frr_upper"] > 0.5
    strict = tracks.at(0.8, 0.95)
    assert (strict.false_accepts, strict.misses) == (1, 1)
    grid = peers.sweep_thresholds(tracks, np.array([0.1, 0.5]), 0.6)
    assert 0.6 in grid and grid[-1] > 0.9  # reaches past the highest negative score
    curve = peers.det_from_tracks(tracks, grid)
    assert curve.false_accepts[-1] == 0 and curve.negative_hours == pytest.approx(0.1)
    at_target = curve.at_fa_rate(5.0)
    assert at_target.false_accepts == 0 and at_target.misses == 1
    with pytest.raises(ValueError):
        peers.DetectorTracks(negatives, 0.0, [], refractory_s=1.0)
