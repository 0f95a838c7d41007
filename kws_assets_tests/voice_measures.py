"""Independent measurements of voiced audio for tests: F0 by autocorrelation, formants by LPC,
and a source-filter vowel synthesiser (impulse train through formant resonators) to test on."""

from __future__ import annotations

import numpy as np
import torch
import torchaudio.functional as AF

F0_MIN_HZ = 60.0
F0_MAX_HZ = 450.0
FRAME_S = 0.04
LOUD_FRACTION = 0.3  # frames within this fraction of the loudest frame's RMS are measured
VOICED_CORRELATION = 0.5
LPC_ORDER = 10
PRE_EMPHASIS = 0.9
MAX_FORMANT_BANDWIDTH_HZ = 500.0
MIN_FORMANT_HZ = 200.0
VOWEL_A = ((700.0, 110.0), (1220.0, 120.0), (2600.0, 160.0))  # (frequency, bandwidth) of /a/


def f0_track(x: np.ndarray, sr: int) -> np.ndarray:
    """Autocorrelation pitch per 40 ms frame (hop 20 ms); NaN for quiet or unvoiced frames
    (RMS under ``LOUD_FRACTION`` of the loudest frame, or normalised correlation under
    ``VOICED_CORRELATION``)."""
    x = np.asarray(x, dtype=np.float64)
    frame = int(FRAME_S * sr)
    lag_min, lag_max = int(sr / F0_MAX_HZ), int(sr / F0_MIN_HZ)
    starts = list(range(0, len(x) - frame, frame // 2))
    rms = np.array([np.sqrt(np.mean(x[i : i + frame] ** 2)) for i in starts])
    track = np.full(len(starts), np.nan)
    for k, (i, level) in enumerate(zip(starts, rms, strict=True)):
        if level < LOUD_FRACTION * rms.max():
            continue
        seg = x[i : i + frame] - x[i : i + frame].mean()
        ac = np.correlate(seg, seg, "full")[frame - 1 :]
        lag = lag_min + int(np.argmax(ac[lag_min:lag_max]))
        if ac[lag] > VOICED_CORRELATION * ac[0]:
            track[k] = sr / lag
    return track


def median_f0(x: np.ndarray, sr: int) -> float:
    """Median autocorrelation pitch of the loud voiced frames (NaN when none is voiced)."""
    track = f0_track(x, sr)
    return float(np.nanmedian(track)) if np.any(np.isfinite(track)) else float("nan")


def median_semitone_shift(before: np.ndarray, after: np.ndarray, sr: int) -> float:
    """Median F0 change in semitones over time-aligned frames voiced in both clips (for real
    speech, whose F0 glides, comparing whole-clip medians would mix different frames)."""
    a, b = f0_track(before, sr), f0_track(after, sr)
    n = min(len(a), len(b))
    both = np.isfinite(a[:n]) & np.isfinite(b[:n])
    if not both.any():
        raise AssertionError("no frame is voiced in both clips")
    return float(np.median(12.0 * np.log2(b[:n][both] / a[:n][both])))


def lpc_formants(x: np.ndarray, sr: int, order: int = LPC_ORDER) -> list[float]:
    """Formant frequencies (ascending) from an autocorrelation-method LPC fit of the middle
    half of ``x``: angles of the poles with bandwidth under ``MAX_FORMANT_BANDWIDTH_HZ``."""
    x = np.asarray(x, dtype=np.float64)
    seg = x[len(x) // 4 : 3 * len(x) // 4]
    seg = np.append(seg[0], seg[1:] - PRE_EMPHASIS * seg[:-1]) * np.hamming(len(seg))
    r = np.correlate(seg, seg, "full")[len(seg) - 1 : len(seg) + order]
    toeplitz = np.array([[r[abs(i - j)] for j in range(order)] for i in range(order)])
    a = np.linalg.solve(toeplitz, r[1 : order + 1])
    roots = np.roots(np.concatenate([[1.0], -a]))
    roots = roots[np.imag(roots) > 0]
    freqs = np.angle(roots) * sr / (2 * np.pi)
    bandwidths = -np.log(np.abs(roots)) * sr / np.pi
    keep = (bandwidths < MAX_FORMANT_BANDWIDTH_HZ) & (freqs > MIN_FORMANT_HZ)
    return sorted(float(f) for f in freqs[keep])


def spectral_centroid(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    return float((spectrum * freqs).sum() / spectrum.sum())


def synthetic_vowel(
    f0_hz: float = 120.0, sr: int = 16000, seconds: float = 1.0, formants=VOWEL_A
) -> np.ndarray:
    """An impulse train at ``f0_hz`` through two-pole resonators: a vowel with known F0 and
    formants, float32 peaking at 0.8."""
    n = int(seconds * sr)
    source = np.zeros(n)
    source[:: round(sr / f0_hz)] = 1.0
    y = torch.tensor(source)
    for freq, bandwidth in formants:
        radius = np.exp(-np.pi * bandwidth / sr)
        a = torch.tensor([1.0, -2 * radius * np.cos(2 * np.pi * freq / sr), radius * radius])
        b = torch.tensor([1.0 - radius, 0.0, 0.0])
        y = AF.lfilter(y, a, b, clamp=False)
    out = y.numpy() - y.numpy().mean()
    return (0.8 * out / np.abs(out).max()).astype(np.float32)
