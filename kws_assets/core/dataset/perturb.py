"""Speaker perturbation: turn one rendered voice into many plausible speakers.

A speaker differs from another mostly by vocal-tract length (formant frequencies scale together,
roughly 1/length), by mean F0 and by speaking rate.  :func:`perturb` changes the three separately:

* **Formant warp** (``warp_factor`` a): the spectral envelope is moved along the frequency axis,
  formant F -> a F, while harmonics (the pitch) stay where they are.  Per STFT frame the log
  magnitude's harmonic peaks are joined (running maximum over ``PEAK_SPAN_HZ``) and smoothed by
  cepstral liftering (quefrencies below ``LIFTER_MS``, shorter than any voice's pitch period) to get
  the envelope E(f); every bin is multiplied by E(f / a) / E(f) and the original phase is kept, so
  resynthesis (overlap-add iSTFT) is a pure per-bin gain change with no phase artefacts.  Gains are
  limited to +-``MAX_ENVELOPE_GAIN_DB``.
* **Pitch shift** (``semitones``): ``augment.shift_pitch`` (phase-vocoder stretch, then a speed
  change).  The speed change also scales the formants by the pitch ratio r, so the envelope is
  warped by a / r beforehand: the net result is formants x a and F0 x r.
* **Tempo** (``tempo``): ``augment.time_stretch`` (phase vocoder): duration / tempo, pitch kept.

Everything is deterministic (no randomness inside :func:`perturb`; :func:`draw_perturbation`
draws from the generator it is given).  The output is finite, peak-limited to
``augment.PEAK_LIMIT`` and faded in/out over ``EDGE_FADE_MS`` so the ends do not click.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from kws_assets.core.audio.io import apply_fades
from kws_assets.core.dataset.augment import PEAK_LIMIT, shift_pitch, time_stretch
from kws_assets.settings import SpeakerPerturbationSettings

ENVELOPE_WINDOW_S = 0.032  # STFT window for the formant warp (next power of two samples)
ENVELOPE_HOP_FRACTION = 4  # hop = window / 4 (Hann, constant overlap-add)
PEAK_SPAN_HZ = 400.0  # wider than the harmonic spacing of any voice (F0 < 400 Hz)
LIFTER_MS = 1.5  # cepstral cutoff: keeps detail coarser than 667 Hz (formants, not harmonics)
MAX_ENVELOPE_GAIN_DB = 30.0
EDGE_FADE_MS = 5.0
LOG_FLOOR = 1e-8
DRAW_DECIMALS = 4
IDENTITY_TOLERANCE = 1e-9
MIN_FACTOR, MAX_FACTOR = 0.5, 2.0  # warp and tempo beyond this are no longer a human speaker
MAX_SEMITONES = 12.0


@dataclass(frozen=True)
class Perturbation:
    """One speaker perturbation: formant warp factor (>1 shorter vocal tract, higher formants),
    pitch shift in semitones, tempo factor (>1 faster)."""

    warp_factor: float = 1.0
    semitones: float = 0.0
    tempo: float = 1.0

    def __post_init__(self) -> None:
        for name, value in (("warp_factor", self.warp_factor), ("tempo", self.tempo)):
            if not (math.isfinite(value) and MIN_FACTOR <= value <= MAX_FACTOR):
                raise ValueError(f"{name}={value} outside [{MIN_FACTOR}, {MAX_FACTOR}]")
        if not (math.isfinite(self.semitones) and abs(self.semitones) <= MAX_SEMITONES):
            raise ValueError(f"semitones={self.semitones} outside +-{MAX_SEMITONES}")

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @property
    def is_identity(self) -> bool:
        return (
            abs(self.warp_factor - 1.0) < IDENTITY_TOLERANCE
            and abs(self.semitones) < IDENTITY_TOLERANCE
            and abs(self.tempo - 1.0) < IDENTITY_TOLERANCE
        )


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def draw_perturbation(
    rng: np.random.Generator, ranges: SpeakerPerturbationSettings
) -> Perturbation:
    """Draw one perturbation: warp and tempo log-uniformly (as likely halved as doubled), semitones
    uniformly, each rounded to ``DRAW_DECIMALS`` so it records exactly."""
    return Perturbation(
        warp_factor=round(_log_uniform(rng, *ranges.warp_factor), DRAW_DECIMALS),
        semitones=round(float(rng.uniform(*ranges.semitones)), DRAW_DECIMALS),
        tempo=round(_log_uniform(rng, *ranges.tempo), DRAW_DECIMALS),
    )


def _envelope_window(sample_rate: int) -> int:
    return 1 << max(6, math.ceil(math.log2(ENVELOPE_WINDOW_S * sample_rate)))


def _log_envelope(log_magnitude: np.ndarray, n_fft: int, lifter_bins: int) -> np.ndarray:
    """Cepstrally smoothed log magnitude, per frame (frames on axis 1, bins on axis 0)."""
    cepstrum = np.fft.irfft(log_magnitude, n=n_fft, axis=0)
    lifter = np.zeros(n_fft)
    lifter[: lifter_bins + 1] = 1.0
    lifter[n_fft - lifter_bins :] = 1.0
    return np.fft.rfft(cepstrum * lifter[:, None], axis=0).real


def _upper_envelope(magnitude: np.ndarray, n_fft: int, sample_rate: int) -> np.ndarray:
    """Running maximum over ``PEAK_SPAN_HZ`` along frequency: fills the valleys between
    harmonics so the cepstral smoothing follows the harmonic peaks, not the leakage floor."""
    half = max(1, round(PEAK_SPAN_HZ / 2 * n_fft / sample_rate))
    padded = np.pad(magnitude, ((half, half), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=0)
    return windows.max(axis=-1)


def warp_formants(samples: np.ndarray, sample_rate: int, warp_factor: float) -> np.ndarray:
    """Move the spectral envelope (formants) by ``warp_factor``, keeping pitch and duration."""
    x = np.asarray(samples, dtype=np.float32)
    if abs(warp_factor - 1.0) < IDENTITY_TOLERANCE or x.size == 0:
        return x.copy()
    n_fft = _envelope_window(sample_rate)
    hop = n_fft // ENVELOPE_HOP_FRACTION
    window = torch.hann_window(n_fft, dtype=torch.float64)
    signal = torch.from_numpy(x.astype(np.float64))
    with torch.inference_mode():
        spec = torch.stft(
            signal, n_fft, hop, window=window, return_complex=True, pad_mode="constant"
        )
    spectrum = spec.numpy()
    log_magnitude = np.log(_upper_envelope(np.abs(spectrum), n_fft, sample_rate) + LOG_FLOOR)
    lifter_bins = max(1, round(LIFTER_MS / 1000.0 * sample_rate))
    envelope = _log_envelope(log_magnitude, n_fft, lifter_bins)
    bins = np.arange(spectrum.shape[0], dtype=np.float64)
    source_bins = bins / warp_factor  # E_warped(f) = E(f / a)
    warped = np.empty_like(envelope)
    for frame in range(envelope.shape[1]):
        warped[:, frame] = np.interp(source_bins, bins, envelope[:, frame])
    limit = MAX_ENVELOPE_GAIN_DB / 20.0 * math.log(10.0)
    gain = np.exp(np.clip(warped - envelope, -limit, limit))
    with torch.inference_mode():
        out = torch.istft(
            torch.from_numpy(spectrum * gain), n_fft, hop, window=window, length=x.size
        )
    return out.numpy().astype(np.float32)


def _limit(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    y = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > PEAK_LIMIT:
        y = y * np.float32(PEAK_LIMIT / peak)
    return apply_fades(y, sample_rate, EDGE_FADE_MS)


def perturb(samples: np.ndarray, sample_rate: int, perturbation: Perturbation) -> np.ndarray:
    """Apply ``perturbation`` to a mono clip: formants x warp, F0 x 2^(semitones/12), duration /
    tempo.  Returns float32 in [-1, 1] (about ``len / tempo`` samples)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {x.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if perturbation.is_identity or x.size == 0:
        return x.copy()
    pitch_ratio = 2.0 ** (perturbation.semitones / 12.0)
    y = warp_formants(x, sample_rate, perturbation.warp_factor / pitch_ratio)
    if abs(perturbation.semitones) >= IDENTITY_TOLERANCE:
        y = shift_pitch(y, sample_rate, perturbation.semitones)
    if abs(perturbation.tempo - 1.0) >= IDENTITY_TOLERANCE:
        y = time_stretch(y, perturbation.tempo)
    return _limit(y, sample_rate)
