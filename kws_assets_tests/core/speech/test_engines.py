"""TTS engines behind one interface: every installed engine speaks a keyword, obeys rate (and
pitch where it has pitch control), is reproducible, and fails clearly."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.speech.engines import (
    ENGINES,
    Rendered,
    TtsEngineError,
    available_engines,
    get_engine,
)
from kws_assets.core.speech.engines.festival import FestivalEngine
from kws_assets.core.speech.engines.flite import FliteEngine
from kws_assets_tests.voice_measures import median_f0

KEYWORD = "yes"
MIN_KEYWORD_S, MAX_KEYWORD_S = 0.15, 1.5
MIN_RMS = 0.01
SLOW, FAST = 0.7, 1.4
PITCH_UP = 1.3
PITCH_TOLERANCE = 0.12  # measured F0 ratio within 12 % of the requested multiplier
PLAUSIBLE_RATES = {8000, 16000, 22050, 24000, 32000, 44100, 48000}


def magnitudes(x: np.ndarray, frame: int = 512) -> np.ndarray:
    """Frame-wise magnitude spectra, flattened (insensitive to waveform phase)."""
    frames = np.lib.stride_tricks.sliding_window_view(x, frame)[:: frame // 2]
    return np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)).ravel()


def usable(name: str):
    engine = ENGINES[name]
    reason = engine.availability()
    if reason is not None:
        pytest.skip(f"{name} not available: {reason}")
    return engine


def default_voice(name: str) -> str:
    engine = usable(name)
    voices = engine.voices("en-us")
    assert voices, f"{name} is available but has no en-us voice"
    return "en-us" if name == "espeak" else voices[0]


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_speaks_a_keyword(name):
    engine = usable(name)
    voice = default_voice(name)
    clip = engine.render(KEYWORD, voice)
    assert isinstance(clip, Rendered)
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert np.all(np.isfinite(clip.samples)) and np.abs(clip.samples).max() <= 1.0
    assert clip.sample_rate in PLAUSIBLE_RATES
    assert MIN_KEYWORD_S <= clip.duration_s <= MAX_KEYWORD_S, clip.duration_s
    assert float(np.sqrt(np.mean(clip.samples.astype(np.float64) ** 2))) > MIN_RMS
    for key in ("engine", "voice", "rate", "pitch", "seed"):
        assert key in clip.params
    assert clip.params["engine"] == name and clip.params["voice"] == voice
    with pytest.raises(dataclasses.FrozenInstanceError):
        clip.sample_rate = 1  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_rate_changes_duration_in_the_right_direction(name):
    engine = usable(name)
    voice = default_voice(name)
    slow = engine.render(KEYWORD, voice, rate=SLOW)
    fast = engine.render(KEYWORD, voice, rate=FAST)
    assert slow.duration_s > 1.3 * fast.duration_s, (slow.duration_s, fast.duration_s)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_equal_arguments_render_equal_audio(name):
    engine = usable(name)
    voice = default_voice(name)
    first = engine.render(KEYWORD, voice, seed=3)
    second = engine.render(KEYWORD, voice, seed=3)
    assert first.params == second.params
    if engine.bit_exact:
        np.testing.assert_array_equal(first.samples, second.samples)
    else:  # espeak: only its flutter phase carries over between calls
        assert abs(len(first.samples) - len(second.samples)) <= 0.01 * len(first.samples)
        n = min(len(first.samples), len(second.samples))
        assert (
            np.corrcoef(magnitudes(first.samples[:n]), magnitudes(second.samples[:n]))[0, 1] > 0.95
        )


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_unknown_voice_is_a_clear_error(name):
    engine = usable(name)
    with pytest.raises(TtsEngineError, match="voice"):
        engine.render(KEYWORD, "no-such-voice-xyz")


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_bad_requests_are_refused(name):
    engine = usable(name)
    voice = default_voice(name)
    with pytest.raises(TtsEngineError, match="empty"):
        engine.render("  ", voice)
    with pytest.raises(TtsEngineError, match="rate"):
        engine.render(KEYWORD, voice, rate=10.0)
    with pytest.raises(TtsEngineError, match="does not take"):
        engine.render(KEYWORD, voice, no_such_param=1)


@pytest.mark.parametrize(
    "name, voice",
    [
        ("espeak", "en-us"),
        ("espeak", "en-us+f2"),
        ("flite", "slt"),
        ("flite", "kal16"),
        ("festival", "kal_diphone"),
    ],
)
def test_pitch_multiplies_the_measured_f0(name, voice):
    engine = usable(name)
    if voice not in engine.voices("en"):
        pytest.skip(f"{name} voice {voice} not installed")
    text = "yes no"
    plain = engine.render(text, voice)
    base = median_f0(plain.samples, plain.sample_rate)
    up = engine.render(text, voice, pitch=PITCH_UP)
    ratio = median_f0(up.samples, up.sample_rate) / base
    assert abs(ratio / PITCH_UP - 1.0) < PITCH_TOLERANCE, ratio


@pytest.mark.parametrize(
    "name, voice", [("flite", "rms"), ("festival", "cmu_us_slt_arctic_hts"), ("piper", None)]
)
def test_voices_without_pitch_control_refuse_pitch(name, voice):
    engine = usable(name)
    voice = voice or default_voice(name)
    if voice not in engine.voices("en"):
        pytest.skip(f"{name} voice {voice} not installed")
    assert not engine.pitch_control(voice)
    with pytest.raises(TtsEngineError, match="no pitch control"):
        engine.render(KEYWORD, voice, pitch=1.2)


def test_non_english_has_no_voices_outside_espeak():
    for name in ("flite", "festival", "piper"):
        assert ENGINES[name].voices("de") == []
    if ENGINES["espeak"].availability() is None:
        assert "de" in ENGINES["espeak"].voices("de")


def test_available_engines_reports_missing_engines_without_raising():
    registry = {
        "flite": FliteEngine(binary="kws-no-such-flite-binary"),
        "festival": FestivalEngine(binary="kws-no-such-text2wave"),
    }
    usable_engines, skipped = available_engines(["flite", "festival", "nonesuch"], registry)
    assert usable_engines == []
    assert "Debian package flite" in skipped["flite"]
    assert "Debian package festival" in skipped["festival"]
    assert "unknown TTS engine" in skipped["nonesuch"]
    assert registry["flite"].voices("en") == []
    with pytest.raises(TtsEngineError, match="not usable"):
        registry["flite"].render(KEYWORD, "slt")


def test_available_engines_keeps_the_requested_order():
    names = [n for n in ("piper", "espeak") if ENGINES[n].availability() is None]
    found, skipped = available_engines(names)
    assert [e.name for e in found] == names and skipped == {}
    with pytest.raises(TtsEngineError, match="unknown TTS engine"):
        get_engine("nonesuch")


def test_festival_text_is_never_evaluated(tmp_path: Path):
    engine = usable("festival")
    marker = tmp_path / "pwned"
    text = f'yes ") (system "touch {marker}") (quit) ("'
    clip = engine.render(text, engine.voices("en")[0])
    assert clip.duration_s > 0.5
    assert not marker.exists()


def test_flite_text_starting_with_a_dash_is_spoken_not_parsed():
    engine = usable("flite")
    clip = engine.render("-voice yes", "slt")
    assert clip.duration_s > engine.render(KEYWORD, "slt").duration_s


def test_piper_seed_selects_the_noise():
    engine = usable("piper")
    voice = default_voice("piper")
    a = engine.render(KEYWORD, voice, seed=1)
    b = engine.render(KEYWORD, voice, seed=2)
    assert not (len(a.samples) == len(b.samples) and np.array_equal(a.samples, b.samples))
    quiet = {"noise_scale": 0.0, "noise_w_scale": 0.0}
    np.testing.assert_array_equal(
        engine.render(KEYWORD, voice, seed=1, **quiet).samples,
        engine.render(KEYWORD, voice, seed=2, **quiet).samples,
    )
    assert a.params["num_speakers"] >= 1 and a.params["seed_used"] is True


def test_piper_voice_by_model_path_and_missing_path():
    engine = usable("piper")
    from kws_assets.core.speech.engines.piper import _bundled_voices

    model = _bundled_voices()[0].model
    by_path = engine.render(KEYWORD, str(model), seed=5)
    by_name = engine.render(KEYWORD, model.stem, seed=5)
    np.testing.assert_array_equal(by_path.samples, by_name.samples)
    with pytest.raises(TtsEngineError, match="not found"):
        engine.render(KEYWORD, "/nonexistent/voice.onnx")
    with pytest.raises(TtsEngineError, match="one speaker"):
        engine.render(KEYWORD, model.stem, speaker_id=3)
