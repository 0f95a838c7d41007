"""Clip quality metrics and the quality gate's rejection rules.

``measure_clip`` turns samples into a :class:`ClipQuality`; ``rejection_reasons`` compares one with
the configured thresholds and returns the reason codes (an empty list means the clip passes).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from kws_assets.config import SILENCE_LABEL, QualitySettings
from kws_assets.core.audio import (
    REASON_BAD_SAMPLE_RATE,
    REASON_EMPTY,
    REASON_MISSING,
    REASON_NON_FINITE,
    REASON_TRUNCATED,
    REASON_UNREADABLE,
    AudioReadError,
    dbfs,
)

# Reason codes (the ``reason`` column of the quarantine table).
WRONG_SAMPLE_RATE = "wrong_sample_rate"
WRONG_DURATION = "wrong_duration"
TOO_QUIET = "too_quiet"
PEAK_OVER = "peak_over"
CLIPPED = "clipped"
DC_OFFSET = "dc_offset"
LOW_SNR = "low_snr"
NO_SPEECH = "no_speech"
NON_FINITE = REASON_NON_FINITE
UNREADABLE = REASON_UNREADABLE
TRUNCATED = REASON_TRUNCATED
EMPTY = REASON_EMPTY
MISSING = REASON_MISSING
BAD_SAMPLE_RATE = REASON_BAD_SAMPLE_RATE
SCHEMA_VIOLATION = "schema_violation"  # a table row failed its pandera schema
REASONS = (
    WRONG_SAMPLE_RATE,
    WRONG_DURATION,
    TOO_QUIET,
    PEAK_OVER,
    CLIPPED,
    DC_OFFSET,
    LOW_SNR,
    NO_SPEECH,
    NON_FINITE,
    UNREADABLE,
    TRUNCATED,
    EMPTY,
    MISSING,
    BAD_SAMPLE_RATE,
    SCHEMA_VIOLATION,
)

# Frame analysis behind snr_db and speech_ratio.
FRAME_MS = 25.0
HOP_MS = 10.0
NOISE_FLOOR_PERCENTILE = 20.0  # frame-energy percentile taken as the noise floor
SIGNAL_PERCENTILE = 90.0  # frame-energy percentile taken as signal (+ noise) level
SPEECH_MARGIN_DB = 6.0  # a frame counts as speech this far above the noise floor
POWER_FLOOR = 1e-20  # = DBFS_FLOOR**2: frame powers never go below -200 dB
# A sample this close to full scale counts as clipped.
CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class ClipQuality:
    """Measured properties of one clip (all floats in dBFS / ratios / seconds, all finite)."""

    duration_s: float
    sample_rate: int
    peak_dbfs: float
    rms_dbfs: float
    clipping_ratio: float
    dc_offset: float
    snr_db: float
    speech_ratio: float

    def as_dict(self) -> dict[str, float | int]:
        """The metrics as a plain dict keyed by field name (the clip table's column names)."""
        return asdict(self)


QUALITY_COLUMNS = tuple(f.name for f in fields(ClipQuality))


def frame_energies_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean power of each 25 ms frame (10 ms hop) in dB, after removing the clip's mean.

    A clip shorter than one frame is analysed as a single frame; powers are floored at
    POWER_FLOOR so digital silence gives finite values.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return np.full(1, 10.0 * math.log10(POWER_FLOOR))
    x = x - x.mean()
    frame = max(1, int(round(FRAME_MS * sample_rate / 1000.0)))
    hop = max(1, int(round(HOP_MS * sample_rate / 1000.0)))
    if x.size <= frame:
        powers = np.array([np.mean(x**2)])
    else:
        n_frames = 1 + (x.size - frame) // hop
        windows = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop][:n_frames]
        powers = np.mean(windows**2, axis=1)
    return 10.0 * np.log10(np.maximum(powers, POWER_FLOOR))


def estimate_snr(samples: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(snr_db, speech_ratio) from frame energies.

    The noise floor is the NOISE_FLOOR_PERCENTILE of frame energies, the loud level the
    SIGNAL_PERCENTILE.  The loud frames hold signal + noise, so the signal power is their power
    minus the floor's; snr_db = 10*log10(that / floor), and 0 when the loud frames are not above
    the floor (silence, stationary noise).  speech_ratio is the fraction of frames more than
    SPEECH_MARGIN_DB above the floor.  The estimate assumes speech fills between
    100 - SIGNAL_PERCENTILE and 100 - NOISE_FLOOR_PERCENTILE percent of the frames (10-80 %), as a
    keyword in a 1 s clip does; noise whose frame energy swings a lot (brown noise) makes the
    floor read low and the SNR high.
    """
    energies = frame_energies_db(samples, sample_rate)
    floor_db = float(np.percentile(energies, NOISE_FLOOR_PERCENTILE))
    loud_db = float(np.percentile(energies, SIGNAL_PERCENTILE))
    excess = 10.0 ** ((loud_db - floor_db) / 10.0) - 1.0
    snr_db = max(0.0, 10.0 * math.log10(excess)) if excess > 0 else 0.0
    speech_ratio = float(np.mean(energies > floor_db + SPEECH_MARGIN_DB))
    return snr_db, speech_ratio


def measure_clip(samples: np.ndarray, sample_rate: int) -> ClipQuality:
    """Measure a clip.  Every field is finite for any finite input, digital silence included.

    Raises ValueError for non-finite samples (those are quarantined as NON_FINITE when read).
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {x.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not np.isfinite(x).all():
        raise ValueError("samples contain NaN or inf")
    if x.size == 0:
        peak = rms = dc = clipping = 0.0
    else:
        peak = float(np.max(np.abs(x)))
        rms = math.sqrt(float(np.mean(x**2)))
        dc = float(x.mean())
        clipping = float(np.mean(np.abs(x) >= CLIP_LEVEL))
    snr_db, speech_ratio = estimate_snr(x, sample_rate)
    return ClipQuality(
        duration_s=x.size / sample_rate,
        sample_rate=int(sample_rate),
        peak_dbfs=dbfs(peak),
        rms_dbfs=dbfs(rms),
        clipping_ratio=clipping,
        dc_offset=dc,
        snr_db=snr_db,
        speech_ratio=speech_ratio,
    )


def rejection_reasons(
    q: ClipQuality,
    label: str,
    thresholds: QualitySettings,
    expected_sr: int,
    expected_duration_s: float,
    is_silence: bool,
) -> list[str]:
    """Every reason code that applies to a clip, in REASONS order; empty means it passes.

    A clip counts as silence if ``is_silence`` is set or its ``label`` is the silence label; for
    silence the TOO_QUIET, LOW_SNR and NO_SPEECH rules are skipped (it is meant to be quiet noise).
    """
    silence = is_silence or label == SILENCE_LABEL
    found: set[str] = set()
    values = [float(getattr(q, name)) for name in QUALITY_COLUMNS]
    if not all(math.isfinite(v) for v in values):
        found.add(NON_FINITE)
    if q.sample_rate != expected_sr:
        found.add(WRONG_SAMPLE_RATE)
    if not abs(q.duration_s - expected_duration_s) <= thresholds.duration_tolerance_s:
        found.add(WRONG_DURATION)
    if q.peak_dbfs > thresholds.max_peak_dbfs:
        found.add(PEAK_OVER)
    if q.clipping_ratio > thresholds.max_clipping_ratio:
        found.add(CLIPPED)
    if abs(q.dc_offset) > thresholds.max_abs_dc_offset:
        found.add(DC_OFFSET)
    if not silence:
        if q.rms_dbfs < thresholds.min_rms_dbfs:
            found.add(TOO_QUIET)
        if q.snr_db < thresholds.min_snr_db:
            found.add(LOW_SNR)
        if q.speech_ratio < thresholds.min_speech_ratio:
            found.add(NO_SPEECH)
    return [reason for reason in REASONS if reason in found]


def read_error_reason(error: AudioReadError) -> str:
    """The quarantine reason code for a failed read (the read error's own code when known)."""
    return error.reason if error.reason in REASONS else UNREADABLE
