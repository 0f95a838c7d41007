"""Clip quality metrics and the quality gate's rejection rules.

``measure_clip`` turns samples into a :class:`ClipQuality`; ``rejection_reasons`` compares one with
the configured thresholds and returns the reason codes (an empty list means the clip passes).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from kws_assets.core.audio.io import (
    READ_ERROR_REASONS,
    REASON_BAD_SAMPLE_RATE,
    REASON_EMPTY,
    REASON_MISSING,
    REASON_NON_FINITE,
    REASON_SPEECH_OVER_WINDOW,
    REASON_TOO_LARGE,
    REASON_TOO_LONG,
    REASON_TOO_MANY_CHANNELS,
    REASON_TRUNCATED,
    REASON_UNREADABLE,
    AudioReadError,
    dbfs,
)
from kws_assets.settings import SILENCE_LABEL, QualitySettings

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
OUTLIER = "outlier"  # far from its keyword's other clips (kws_assets.core.dataset.outliers)
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
    OUTLIER,
)

# Reason codes of corpus rows and recordings that never become clips (quarantine stages "ingest",
# "alignment" and "synthesis").  Read errors above (MISSING, UNREADABLE, TRUNCATED, EMPTY,
# NON_FINITE, BAD_SAMPLE_RATE) apply to recordings too.
SOURCE_UNREADABLE = "source_unreadable"  # a whole source: manifest or root missing/unparsable
DECODER_MISSING = "decoder_missing"  # a whole source: its audio format has no decoder here
BAD_MANIFEST_ROW = "bad_manifest_row"  # a manifest line that cannot be parsed
LINE_TOO_LONG = "line_too_long"  # a manifest line over ingest.max_line_bytes (skipped unread)
FIELD_TOO_LARGE = "field_too_large"  # a manifest field over ingest.max_field_bytes
TOO_MANY_ROWS = "too_many_rows"  # manifest rows past ingest.max_manifest_rows (not read)
TOO_MANY_CHANNELS = REASON_TOO_MANY_CHANNELS  # header declares more than ingest.max_channels
MISSING_PATH = "missing_path"
PATH_OUTSIDE_ROOT = "path_outside_root"  # a security rejection: the path leaves the corpus root
NOT_A_FILE = "not_a_file"
MISSING_TRANSCRIPT = "missing_transcript"
BAD_TRANSCRIPT = "bad_transcript"  # undecodable bytes or control characters
MISSING_SPEAKER = "missing_speaker"
DUPLICATE_ROW = "duplicate_row"  # the same file listed again
DUPLICATE_AUDIO = "duplicate_audio"  # byte-identical to a file already ingested
TOO_LARGE = REASON_TOO_LARGE
TOO_LONG = REASON_TOO_LONG
TOO_SHORT = "too_short"
UNSUPPORTED_ENCODING = "unsupported_encoding"
SILENT = "silent"
ALIGNMENT_FAILED = "alignment_failed"
OUT_OF_DICTIONARY = "out_of_dictionary"
RENDER_FAILED = "render_failed"
SPEECH_OVER_WINDOW = REASON_SPEECH_OVER_WINDOW  # a keyword longer than audio.clip_seconds
RECORDING_REASONS = (
    SOURCE_UNREADABLE,
    DECODER_MISSING,
    BAD_MANIFEST_ROW,
    LINE_TOO_LONG,
    FIELD_TOO_LARGE,
    TOO_MANY_ROWS,
    TOO_MANY_CHANNELS,
    MISSING_PATH,
    PATH_OUTSIDE_ROOT,
    NOT_A_FILE,
    MISSING_TRANSCRIPT,
    BAD_TRANSCRIPT,
    MISSING_SPEAKER,
    DUPLICATE_ROW,
    DUPLICATE_AUDIO,
    TOO_LARGE,
    TOO_LONG,
    TOO_SHORT,
    UNSUPPORTED_ENCODING,
    SILENT,
    CLIPPED,
    DC_OFFSET,
    ALIGNMENT_FAILED,
    OUT_OF_DICTIONARY,
    RENDER_FAILED,
    SPEECH_OVER_WINDOW,
)
# The alignment-confidence gate (see alignment_reasons below): an aligned clip whose word
# confidence is below alignment.min_confidence.
LOW_ALIGNMENT_CONFIDENCE = "low_alignment_confidence"
ALL_REASONS = tuple(dict.fromkeys((*REASONS, *RECORDING_REASONS, LOW_ALIGNMENT_CONFIDENCE)))

# Bits per sample of libsndfile subtypes; compressed formats (MP3, Vorbis, Opus) have none.
SUBTYPE_BIT_DEPTHS = {
    "PCM_S8": 8,
    "PCM_U8": 8,
    "PCM_16": 16,
    "PCM_24": 24,
    "PCM_32": 32,
    "FLOAT": 32,
    "DOUBLE": 64,
    "ULAW": 8,
    "ALAW": 8,
    "IMA_ADPCM": 4,
    "MS_ADPCM": 4,
    "VOX_ADPCM": 4,
    "G721_32": 4,
    "G723_24": 3,
    "G723_40": 5,
    "DWVW_12": 12,
    "DWVW_16": 16,
    "DWVW_24": 24,
    "DPCM_8": 8,
    "DPCM_16": 16,
    "ALAC_16": 16,
    "ALAC_20": 20,
    "ALAC_24": 24,
    "ALAC_32": 32,
    "NMS_ADPCM_16": 2,
    "NMS_ADPCM_24": 3,
    "NMS_ADPCM_32": 4,
}


def bit_depth(subtype: str | None) -> int | None:
    """Bits per sample of a libsndfile subtype (``PCM_16`` -> 16), None for compressed formats."""
    return SUBTYPE_BIT_DEPTHS.get(subtype or "")


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


CLIP_QUALITY_FIELDS = tuple(f.name for f in fields(ClipQuality))


def frame_energies_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean power of each 25 ms frame (10 ms hop) in dB, after removing the clip's mean.

    A clip shorter than one frame is analysed as a single frame; powers are floored at
    POWER_FLOOR so digital silence gives finite values.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return np.full(1, 10.0 * math.log10(POWER_FLOOR))
    x = x - x.mean()
    frame = max(1, round(FRAME_MS * sample_rate / 1000.0))
    hop = max(1, round(HOP_MS * sample_rate / 1000.0))
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


LEVEL_COLUMNS = ("peak_dbfs", "rms_dbfs", "clipping_ratio", "dc_offset")


def measure_levels(samples: np.ndarray) -> dict[str, float]:
    """Peak and RMS level (dBFS), clipped-sample ratio and DC offset of a whole recording.

    Cheaper than :func:`measure_clip` (no frame analysis), for recordings of any length.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return {
            "peak_dbfs": dbfs(0.0),
            "rms_dbfs": dbfs(0.0),
            "clipping_ratio": 0.0,
            "dc_offset": 0.0,
        }
    return {
        "peak_dbfs": dbfs(float(np.max(np.abs(x)))),
        "rms_dbfs": dbfs(math.sqrt(float(np.mean(x**2)))),
        "clipping_ratio": float(np.mean(np.abs(x) >= CLIP_LEVEL)),
        "dc_offset": float(x.mean()),
    }


def recording_reasons(
    duration_s: float,
    levels: dict[str, float],
    thresholds: QualitySettings,
    max_duration_s: float,
    min_duration_s: float,
    silence_peak_dbfs: float,
    is_silence: bool,
) -> list[str]:
    """Reason codes that rule out a whole corpus recording before it is cut into clips.

    A recording is rejected when it is shorter than ``min_duration_s`` or longer than
    ``max_duration_s``, digitally silent (peak below ``silence_peak_dbfs``; not checked for
    background-noise recordings, ``is_silence``), or breaks the clip gate's clipping or DC-offset
    threshold over its whole length (then its clips would too).
    """
    found = []
    if duration_s < min_duration_s:
        found.append(TOO_SHORT)
    if duration_s > max_duration_s:
        found.append(TOO_LONG)
    if not is_silence and levels["peak_dbfs"] < silence_peak_dbfs:
        found.append(SILENT)
    if levels["clipping_ratio"] > thresholds.max_clipping_ratio:
        found.append(CLIPPED)
    if abs(levels["dc_offset"]) > thresholds.max_abs_dc_offset:
        found.append(DC_OFFSET)
    return found


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
    values = [float(getattr(q, name)) for name in CLIP_QUALITY_FIELDS]
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
    return (
        error.reason
        if error.reason in REASONS or error.reason in READ_ERROR_REASONS
        else UNREADABLE
    )


def alignment_reasons(confidence: float | None, min_confidence: float) -> list[str]:
    """``[LOW_ALIGNMENT_CONFIDENCE]`` for an aligned clip whose word confidence (0-1, from the
    aligner that placed the word) is below ``min_confidence``; empty for clips that passed and
    for clips that were never aligned (``confidence`` None or NaN: synthetic, labelled, noise)."""
    if confidence is None or math.isnan(float(confidence)):
        return []
    return [LOW_ALIGNMENT_CONFIDENCE] if float(confidence) < min_confidence else []
