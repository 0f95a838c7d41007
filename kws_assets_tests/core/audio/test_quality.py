"""Tests of kws_assets.core.audio.quality on generated signals with known properties."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from kws_assets.core.audio import quality as q
from kws_assets.core.audio.io import (
    AudioReadError,
    apply_fades,
    colored_noise,
    dbfs,
    read_audio,
    write_wav,
)
from kws_assets.core.audio.quality import (
    ClipQuality,
    measure_clip,
    read_error_reason,
    rejection_reasons,
)
from kws_assets.settings import SILENCE_LABEL, QualitySettings

SR = 16000
THRESHOLDS = QualitySettings()


def sine(freq_hz: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def speech_like(rng: np.random.Generator, n: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """Three 150 ms harmonic bursts (random f0, 11 harmonics) and the mask of their samples."""
    x = np.zeros(n)
    active = np.zeros(n, dtype=bool)
    t = np.arange(int(0.15 * SR)) / SR
    for centre in (0.25, 0.5, 0.75):
        f0 = rng.uniform(110, 220)
        burst = sum(
            np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 12)
        )
        burst = apply_fades(burst, SR, 10.0)
        start = int(centre * SR) - burst.size // 2
        x[start : start + burst.size] = burst
        active[start : start + burst.size] = True
    return x, active


def bursts_in_noise(true_snr_db: float, kind: str, seed: int, level: float = 0.1) -> np.ndarray:
    """Speech-like bursts plus noise; true SNR = burst power over the bursts' own samples /
    noise."""
    rng = np.random.default_rng(seed)
    bursts, active = speech_like(rng)
    noise = colored_noise(kind, SR, rng)
    gain = math.sqrt(np.mean(bursts[active] ** 2) / 10 ** (true_snr_db / 10))
    return (level * (bursts + gain * noise)).astype(np.float32)


# ------------------------------------------------------------------------------------ metrics


@pytest.mark.parametrize("amplitude", [0.9, 0.5, 0.01])
def test_sine_level_metrics(amplitude):
    m = measure_clip(sine(997.0, amplitude=amplitude), SR)
    assert abs(m.peak_dbfs - dbfs(amplitude)) < 0.1
    assert abs(m.rms_dbfs - dbfs(amplitude / math.sqrt(2))) < 0.1
    assert m.clipping_ratio == 0.0
    assert abs(m.dc_offset) < 1e-3
    assert m.duration_s == 1.0 and m.sample_rate == SR


def test_clipped_sine_has_clipping_ratio():
    clipped = np.clip(sine(440.0, amplitude=2.0), -1.0, 1.0)
    m = measure_clip(clipped, SR)
    # |2 sin| >= 1 for two thirds of each period.
    assert abs(m.clipping_ratio - 2 / 3) < 0.02
    assert measure_clip(sine(440.0, amplitude=0.9), SR).clipping_ratio == 0.0


def test_clipping_survives_a_pcm16_round_trip(tmp_path):
    write_wav(tmp_path / "hot.wav", sine(440.0, amplitude=1.3), SR)
    m = measure_clip(read_audio(tmp_path / "hot.wav").samples, SR)
    assert m.clipping_ratio > 0.3


@pytest.mark.parametrize("offset", [0.2, -0.07, 0.0])
def test_dc_offset_is_measured(offset):
    m = measure_clip(sine(300.0, amplitude=0.3) + np.float32(offset), SR)
    assert abs(m.dc_offset - offset) < 1e-3


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_snr_estimate_tracks_true_snr(kind):
    true_snrs = [5.0, 10.0, 15.0, 20.0, 30.0]
    for seed in range(3):
        estimates = [measure_clip(bursts_in_noise(s, kind, seed), SR).snr_db for s in true_snrs]
        assert all(b > a for a, b in itertools.pairwise(estimates)), estimates
        for true, est in zip(true_snrs, estimates, strict=True):
            assert abs(est - true) < 3.0, (kind, seed, true, est)


def test_snr_estimate_subtracts_noise_at_low_snr():
    # Loud frames hold signal + noise; without subtracting the floor 0 dB would read as ~3 dB.
    for true_snr in (0.0, 3.0):
        est = measure_clip(bursts_in_noise(true_snr, "white", 0), SR).snr_db
        assert abs(est - true_snr) < 1.5, (true_snr, est)


def test_snr_and_speech_ratio_ignore_dc_offset():
    clip = bursts_in_noise(15.0, "white", 3)
    plain, shifted = measure_clip(clip, SR), measure_clip(clip + np.float32(0.3), SR)
    assert abs(plain.snr_db - shifted.snr_db) < 0.01
    assert plain.speech_ratio == shifted.speech_ratio


def test_snr_is_independent_of_overall_level():
    loud = measure_clip(bursts_in_noise(12.0, "white", 0, level=0.2), SR)
    quiet = measure_clip(bursts_in_noise(12.0, "white", 0, level=0.002), SR)
    assert abs(loud.snr_db - quiet.snr_db) < 0.01
    assert abs((loud.rms_dbfs - quiet.rms_dbfs) - 40.0) < 0.01


def test_speech_ratio_matches_active_fraction():
    rng = np.random.default_rng(4)
    _, active = speech_like(rng)
    m = measure_clip(bursts_in_noise(25.0, "white", 4), SR)
    assert abs(m.speech_ratio - active.mean()) < 0.1


def test_stationary_noise_has_no_speech():
    noise = 0.05 * colored_noise("white", SR, np.random.default_rng(0))
    m = measure_clip(noise, SR)
    assert m.speech_ratio < 0.05
    assert m.snr_db < THRESHOLDS.min_snr_db


@pytest.mark.parametrize("n", [SR, 100, 1, 0])
def test_digital_silence_gives_finite_metrics(n):
    m = measure_clip(np.zeros(n, dtype=np.float32), SR)
    values = m.as_dict()
    assert set(values) == set(q.CLIP_QUALITY_FIELDS)
    assert all(math.isfinite(v) for v in values.values())
    assert m.rms_dbfs == m.peak_dbfs == -200.0
    assert m.snr_db == 0.0 and m.speech_ratio == 0.0 and m.clipping_ratio == 0.0


def test_measure_clip_rejects_non_finite_and_bad_shapes():
    bad = sine(440.0)
    bad[10] = np.nan
    with pytest.raises(ValueError):
        measure_clip(bad, SR)
    with pytest.raises(ValueError):
        measure_clip(np.zeros((2, 10), dtype=np.float32), SR)


def test_as_dict_round_trips():
    m = measure_clip(sine(440.0), SR)
    assert ClipQuality(**m.as_dict()) == m


# ------------------------------------------------------------------------ rejection_reasons


def reasons_for(m: ClipQuality, label: str = "yes", is_silence: bool = False) -> list[str]:
    return rejection_reasons(m, label, THRESHOLDS, SR, 1.0, is_silence)


@pytest.fixture(scope="module")
def clean() -> ClipQuality:
    return measure_clip(bursts_in_noise(20.0, "pink", 1), SR)


def test_clean_clip_passes(clean):
    assert reasons_for(clean) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"sample_rate": 8000}, q.WRONG_SAMPLE_RATE),
        ({"duration_s": 0.98}, q.WRONG_DURATION),
        ({"duration_s": 1.01}, q.WRONG_DURATION),
        ({"rms_dbfs": -70.0}, q.TOO_QUIET),
        ({"peak_dbfs": 1.5}, q.PEAK_OVER),
        ({"clipping_ratio": 0.2}, q.CLIPPED),
        ({"dc_offset": -0.3}, q.DC_OFFSET),
        ({"snr_db": 1.0}, q.LOW_SNR),
        ({"speech_ratio": 0.0}, q.NO_SPEECH),
        ({"snr_db": float("nan")}, q.NON_FINITE),
    ],
)
def test_each_violated_threshold_gives_its_reason(clean, change, expected):
    assert expected in q.REASONS
    assert reasons_for(dataclasses.replace(clean, **change)) == [expected]


def test_values_at_the_threshold_pass(clean):
    at_limits = dataclasses.replace(
        clean,
        duration_s=1.0 + THRESHOLDS.duration_tolerance_s / 2,
        rms_dbfs=THRESHOLDS.min_rms_dbfs,
        peak_dbfs=THRESHOLDS.max_peak_dbfs,
        clipping_ratio=THRESHOLDS.max_clipping_ratio,
        dc_offset=THRESHOLDS.max_abs_dc_offset,
        snr_db=THRESHOLDS.min_snr_db,
        speech_ratio=THRESHOLDS.min_speech_ratio,
    )
    assert reasons_for(at_limits) == []


def test_several_violations_are_all_listed_in_reasons_order(clean):
    bad = dataclasses.replace(clean, sample_rate=22050, dc_offset=0.5, snr_db=0.0)
    assert reasons_for(bad) == [q.WRONG_SAMPLE_RATE, q.DC_OFFSET, q.LOW_SNR]


def test_measured_defects_are_rejected():
    clipped = np.clip(10 * bursts_in_noise(20.0, "white", 2), -1.0, 1.0)
    assert q.CLIPPED in reasons_for(measure_clip(clipped, SR))
    shifted = bursts_in_noise(20.0, "white", 2) + np.float32(0.2)
    assert q.DC_OFFSET in reasons_for(measure_clip(shifted, SR))
    quiet = bursts_in_noise(20.0, "white", 2, level=1e-4)
    assert reasons_for(measure_clip(quiet, SR)) == [q.TOO_QUIET]
    short = bursts_in_noise(20.0, "white", 2)[: SR // 2]
    assert reasons_for(measure_clip(short, SR)) == [q.WRONG_DURATION]


def test_silence_skips_level_snr_and_speech_rules():
    quiet_noise = 10 ** (-65 / 20) * colored_noise("pink", SR, np.random.default_rng(3))
    m = measure_clip(quiet_noise, SR)
    as_keyword = reasons_for(m, label="yes")
    assert {q.TOO_QUIET, q.LOW_SNR, q.NO_SPEECH} <= set(as_keyword)
    assert reasons_for(m, label=SILENCE_LABEL, is_silence=True) == []
    assert reasons_for(m, label=SILENCE_LABEL, is_silence=False) == []
    clipped_silence = dataclasses.replace(m, clipping_ratio=0.5)
    assert reasons_for(clipped_silence, label=SILENCE_LABEL, is_silence=True) == [q.CLIPPED]


def test_read_error_reason_maps_audio_codes():
    assert read_error_reason(AudioReadError("x", "non_finite")) == q.NON_FINITE
    assert read_error_reason(AudioReadError("x", "truncated")) == q.TRUNCATED
    assert read_error_reason(AudioReadError("x", "something_new")) == q.UNREADABLE
    assert len(set(q.REASONS)) == len(q.REASONS)
