"""Speaker perturbation, measured: F0 moves by the requested semitones, the formant warp moves
formants (LPC) and the spectral centroid, tempo changes duration but not pitch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kws_assets.core.dataset.perturb import (
    Perturbation,
    draw_perturbation,
    perturb,
    warp_formants,
)
from kws_assets.settings import SpeakerPerturbationSettings
from kws_assets_tests.voice_measures import (
    lpc_formants,
    median_f0,
    median_semitone_shift,
    spectral_centroid,
    synthetic_vowel,
)

SR = 16000
SEMITONE_TOLERANCE = 0.3  # the pitch ratio is rounded to 0.01 (1/6 semitone) plus estimator error
FORMANT_TOLERANCE = 0.12  # formants kept within 12 % when only the pitch moves
FADE_SAMPLES = int(0.005 * SR)


@pytest.fixture(scope="module")
def vowel() -> np.ndarray:
    return synthetic_vowel(f0_hz=120.0, sr=SR)


def semitones_between(f_from: float, f_to: float) -> float:
    return 12.0 * math.log2(f_to / f_from)


@pytest.mark.parametrize("semitones", [-4.0, -1.5, 2.0, 5.0])
def test_pitch_shift_moves_f0_by_the_requested_semitones(vowel, semitones):
    out = perturb(vowel, SR, Perturbation(semitones=semitones))
    measured = semitones_between(median_f0(vowel, SR), median_f0(out, SR))
    assert abs(measured - semitones) < SEMITONE_TOLERANCE, measured
    assert len(out) == len(vowel)


@pytest.mark.parametrize("semitones", [-3.0, 3.0])
def test_pitch_shift_keeps_the_formants(vowel, semitones):
    before = lpc_formants(vowel, SR)[:2]
    after = lpc_formants(perturb(vowel, SR, Perturbation(semitones=semitones)), SR)[:2]
    for f_before, f_after in zip(before, after, strict=True):
        assert abs(f_after / f_before - 1.0) < FORMANT_TOLERANCE, (before, after)


@pytest.mark.parametrize("warp", [0.87, 1.15])
def test_formant_warp_moves_formants_and_centroid_in_its_direction(vowel, warp):
    out = perturb(vowel, SR, Perturbation(warp_factor=warp))
    before, after = lpc_formants(vowel, SR)[:3], lpc_formants(out, SR)[:3]
    assert len(after) == 3
    for f_before, f_after in zip(before, after, strict=True):
        moved = f_after / f_before
        # at least a third of the requested log-shift, and not past twice it
        assert math.log(moved) / math.log(warp) > 1 / 3, (before, after)
        assert math.log(moved) / math.log(warp) < 2.0, (before, after)
    centroid_ratio = spectral_centroid(out, SR) / spectral_centroid(vowel, SR)
    assert (centroid_ratio - 1.0) * (warp - 1.0) > 0 and abs(centroid_ratio - 1.0) > 0.04
    assert median_f0(out, SR) == pytest.approx(median_f0(vowel, SR), rel=0.02)


@pytest.mark.parametrize("tempo", [0.8, 1.25])
def test_tempo_changes_duration_by_the_factor_and_keeps_pitch(vowel, tempo):
    out = perturb(vowel, SR, Perturbation(tempo=tempo))
    assert len(out) == pytest.approx(len(vowel) / tempo, abs=2)
    assert median_f0(out, SR) == pytest.approx(median_f0(vowel, SR), rel=0.02)


def test_output_is_bounded_finite_deterministic_and_fades_at_the_ends(vowel):
    loud = np.clip(vowel * 1.25, -1.0, 1.0)
    p = Perturbation(warp_factor=1.12, semitones=3.0, tempo=0.9)
    out = perturb(loud, SR, p)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out)) and np.abs(out).max() <= 1.0
    # the ends ramp from silence: no sample near an end is louder than the linear 5 ms fade
    ramp = (np.arange(FADE_SAMPLES) + 1) / FADE_SAMPLES
    assert np.all(np.abs(out[:FADE_SAMPLES]) <= ramp)
    assert np.all(np.abs(out[-FADE_SAMPLES:]) <= ramp[::-1])
    assert out[0] == 0.0
    np.testing.assert_array_equal(out, perturb(loud, SR, p))


def test_identity_returns_a_copy(vowel):
    out = perturb(vowel, SR, Perturbation())
    np.testing.assert_array_equal(out, vowel)
    assert out is not vowel
    np.testing.assert_array_equal(warp_formants(vowel, SR, 1.0), vowel)


def test_draws_are_deterministic_within_ranges_and_recordable():
    ranges = SpeakerPerturbationSettings(
        warp_factor=(0.9, 1.1), semitones=(-2, 2), tempo=(0.95, 1.05)
    )
    first = [draw_perturbation(np.random.default_rng(7), ranges) for _ in range(2)]
    assert first[0] == first[1]
    draws = [
        draw_perturbation(rng, ranges) for rng in [np.random.default_rng(1)] for _ in range(200)
    ]
    assert all(
        0.9 <= d.warp_factor <= 1.1 and -2 <= d.semitones <= 2 and 0.95 <= d.tempo <= 1.05
        for d in draws
    )
    assert len({d.warp_factor for d in draws}) > 150
    assert sum(d.warp_factor > 1 for d in draws) > 60 and sum(d.warp_factor < 1 for d in draws) > 60
    assert Perturbation(**draws[0].as_dict()) == draws[0]


def test_bad_perturbations_and_inputs_are_refused(vowel):
    with pytest.raises(ValueError, match="warp_factor"):
        Perturbation(warp_factor=3.0)
    with pytest.raises(ValueError, match="semitones"):
        Perturbation(semitones=float("nan"))
    with pytest.raises(ValueError, match="mono"):
        perturb(np.zeros((2, 100), dtype=np.float32), SR, Perturbation(tempo=1.1))
    with pytest.raises(ValueError, match="range"):
        SpeakerPerturbationSettings(tempo=(1.2, 0.8))


def test_espeak_vowel_f0_moves_by_semitones():
    from kws_assets.core.audio.io import resample
    from kws_assets.core.speech import tts

    speech = tts.synthesize("yes no", voice="en-us")
    x = resample(speech.samples, speech.sample_rate, SR)
    out = perturb(x, SR, Perturbation(warp_factor=1.1, semitones=-3.0))
    measured = median_semitone_shift(x, out, SR)
    assert abs(measured + 3.0) < SEMITONE_TOLERANCE, measured
