"""The PCM_16 fast decoder: exactly libsndfile's samples for the clip store's files, None (fall
back to read_audio) for everything else."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import soundfile as sf

from kws_assets.core.audio.io import read_audio, wav_bytes
from kws_assets.core.audio.pcm_wav import decode_pcm16_mono, pcm16_mono_samples

SR = 16000


def tone(n: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(n) / SR
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def encoded(samples: np.ndarray, sr: int = SR, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, sr, subtype=subtype, format="WAV")
    return buffer.getvalue()


def test_store_clip_decodes_bit_identical_to_read_audio() -> None:
    rng = np.random.default_rng(0)
    samples = np.clip(rng.standard_normal(SR) * 0.4, -1, 1).astype(np.float32)
    samples[:4] = [-1.0, 1.0, 0.0, -0.5]  # full scale both ways
    data = wav_bytes(samples, SR)
    fast = decode_pcm16_mono(data, SR)
    reference = read_audio(data).samples
    assert fast is not None and fast.dtype == np.float32
    np.testing.assert_array_equal(fast, reference)


def test_extra_chunks_before_the_data_are_skipped() -> None:
    data = wav_bytes(tone(), SR)
    fmt_end = 12 + 8 + struct.unpack_from("<I", data, 16)[0]
    extra = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\0"  # odd size: one pad byte
    patched = data[:fmt_end] + extra + data[fmt_end:]
    patched = patched[:4] + struct.pack("<I", len(patched) - 8) + patched[8:]
    np.testing.assert_array_equal(decode_pcm16_mono(patched, SR), read_audio(patched).samples)


@pytest.mark.parametrize(
    "make",
    [
        lambda: encoded(np.stack([tone(), tone()], axis=1)),  # stereo
        lambda: encoded(tone(), subtype="PCM_24"),
        lambda: encoded(tone(), subtype="FLOAT"),
        lambda: encoded(tone(), sr=8000),  # another rate: read_audio resamples it
        lambda: encoded(tone())[:-100],  # data chunk cut short
        lambda: encoded(tone(0)),  # no samples
        lambda: b"OggS" + b"\0" * 100,
        lambda: b"",
    ],
)
def test_anything_else_is_left_to_read_audio(make) -> None:
    assert decode_pcm16_mono(make(), SR) is None


def test_samples_are_a_view_of_the_bytes_until_converted() -> None:
    data = wav_bytes(tone(1000), SR)
    pcm = pcm16_mono_samples(data, SR)
    assert pcm is not None and pcm.dtype == np.dtype("<i2") and pcm.size == 1000
    assert not pcm.flags.writeable  # frombuffer over bytes: no copy was made
