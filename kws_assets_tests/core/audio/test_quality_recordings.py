"""Recording-level checks of kws_assets.core.audio.quality (applied at ingest, before any clip is
cut) and the bit depth of libsndfile subtypes."""

from __future__ import annotations

import numpy as np
import pytest

from kws_assets.core.audio import quality
from kws_assets.settings import QualitySettings

SR = 16000
THRESHOLDS = QualitySettings()


def reasons(samples: np.ndarray, is_silence: bool = False, **limits) -> list[str]:
    settings = {
        "max_duration_s": 600.0,
        "min_duration_s": 0.1,
        "silence_peak_dbfs": -60.0,
        **limits,
    }
    return quality.recording_reasons(
        len(samples) / SR,
        quality.measure_levels(samples),
        THRESHOLDS,
        is_silence=is_silence,
        **settings,
    )


def test_levels_measure_what_they_say():
    t = np.arange(SR) / SR
    sine = 0.5 * np.sin(2 * np.pi * 100 * t)
    levels = quality.measure_levels(sine + 0.1)
    assert levels["peak_dbfs"] == pytest.approx(20 * np.log10(0.6), abs=0.01)
    assert levels["rms_dbfs"] == pytest.approx(10 * np.log10(0.125 + 0.01), abs=0.01)
    assert levels["dc_offset"] == pytest.approx(0.1, abs=1e-3)
    assert levels["clipping_ratio"] == 0.0
    assert quality.measure_levels(np.clip(3 * sine, -1, 1))["clipping_ratio"] > 0.5
    assert all(np.isfinite(v) for v in quality.measure_levels(np.zeros(0)).values())


def test_recording_reasons():
    rng = np.random.default_rng(0)
    speechy = (0.1 * rng.standard_normal(2 * SR)).astype(np.float32)
    assert reasons(speechy) == []
    assert reasons(np.zeros(2 * SR)) == [quality.SILENT]
    assert reasons(np.zeros(2 * SR), is_silence=True) == []  # background noise may be quiet
    assert reasons(speechy[:800]) == [quality.TOO_SHORT]
    assert reasons(speechy, max_duration_s=1.0) == [quality.TOO_LONG]
    assert reasons(np.clip(30 * speechy, -1, 1)) == [quality.CLIPPED]
    assert reasons(speechy + 0.2) == [quality.DC_OFFSET]


@pytest.mark.parametrize(
    "subtype, bits",
    [
        ("PCM_16", 16),
        ("PCM_24", 24),
        ("PCM_U8", 8),
        ("FLOAT", 32),
        ("DOUBLE", 64),
        ("ULAW", 8),
        ("MPEG_LAYER_III", None),
        ("VORBIS", None),
        (None, None),
    ],
)
def test_bit_depth_of_subtypes(subtype, bits):
    assert quality.bit_depth(subtype) == bits


def test_every_reason_code_is_unique_and_known():
    assert len(set(quality.ALL_REASONS)) == len(quality.ALL_REASONS)
    assert quality.OUTLIER in quality.REASONS
    assert {quality.PATH_OUTSIDE_ROOT, quality.TOO_LARGE, quality.ALIGNMENT_FAILED} <= set(
        quality.ALL_REASONS
    )
