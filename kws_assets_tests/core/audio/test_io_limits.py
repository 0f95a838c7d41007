"""Limits before work: what a header declares is checked before any sample array is made."""

from __future__ import annotations

import io
import struct
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from kws_assets.core.audio import quality
from kws_assets.core.audio.io import AudioReadError, read_audio
from kws_assets.core.audio.pcm_wav import decode_pcm16_mono
from kws_assets.core.corpus.connectors.files import decode_facts
from kws_assets.settings import IngestSettings


def wav(samples: np.ndarray, sr: int = 16000, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, subtype=subtype, format=fmt)
    return buffer.getvalue()


def with_data_size(data: bytes, size: int) -> bytes:
    pos = data.index(b"data")
    return data[: pos + 4] + struct.pack("<I", size) + data[pos + 8 :]


def test_wav_claiming_4_gb_in_1_kb_is_truncated_without_allocating():
    data = with_data_size(wav(np.zeros(400, np.float32)), 0xFFFFFFF0)
    assert len(data) < 1024
    tracemalloc.start()
    with pytest.raises(AudioReadError) as err:
        read_audio(data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert err.value.reason == quality.TRUNCATED and "declares" in err.value.detail
    assert peak < 1 << 20
    assert decode_pcm16_mono(data, 16000) is None
    assert decode_facts(data, "x.wav", IngestSettings()).error_reason == quality.TRUNCATED


def test_channel_duration_and_size_limits_come_from_the_header():
    many = wav(np.zeros((1600, 12), np.float32))
    with pytest.raises(AudioReadError) as err:
        read_audio(many, max_channels=8)
    assert err.value.reason == quality.TOO_MANY_CHANNELS
    assert read_audio(many).original_channels == 12  # no limit asked, no refusal
    facts = decode_facts(many, "many.wav", IngestSettings())
    assert facts.error_reason == quality.TOO_MANY_CHANNELS and "12 channels" in facts.error_detail
    long = wav(np.zeros(16000 * 3, np.float32))
    with pytest.raises(AudioReadError) as err:
        read_audio(long, max_seconds=2.0)
    assert err.value.reason == quality.TOO_LONG
    with pytest.raises(AudioReadError) as err:
        read_audio(long, max_decoded_bytes=16000 * 4)
    assert err.value.reason == quality.TOO_LARGE
    assert (
        decode_facts(long, "l.wav", IngestSettings(max_decoded_mb=0.1)).error_reason
        == quality.TOO_LARGE
    )


def test_sample_rate_bound_is_checked_before_decoding():
    data = bytearray(wav(np.zeros(800, np.float32)))
    struct.pack_into("<I", data, data.index(b"fmt ") + 12, 3)  # 3 Hz
    with pytest.raises(AudioReadError) as err:
        read_audio(bytes(data))
    assert err.value.reason in {quality.BAD_SAMPLE_RATE, quality.UNREADABLE}


def test_flac_is_not_held_to_the_pcm_size_rule():
    data = wav(np.zeros(16000, np.float32), subtype="PCM_24", fmt="FLAC")
    assert len(data) < 16000 * 3 and read_audio(data).frames == 16000
