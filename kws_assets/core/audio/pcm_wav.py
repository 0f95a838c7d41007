"""A fast decoder for the one WAV layout the clip store writes: mono 16-bit PCM.

``kws_assets.core.audio.io.read_audio`` handles every format libsndfile knows, but through Python
callbacks that cost more per 1-s clip than its MFCC.  Clips in the store are all canonical
``RIFF/WAVE`` files with a PCM ``fmt `` chunk, one channel and 16-bit samples, and those are a
header walk plus ``numpy.frombuffer``.  :func:`decode_pcm16_mono` returns ``None`` for anything
else (other encodings, channel counts or rates, odd or damaged headers), and the caller falls back
to ``read_audio``, which also produces the proper error for bad files.  The samples are scaled
exactly as libsndfile scales PCM_16 to float (divide by 32768).
"""

from __future__ import annotations

import struct

import numpy as np

RIFF_HEADER_BYTES = 12
CHUNK_HEADER_BYTES = 8
FMT_MIN_BYTES = 16
WAVE_FORMAT_PCM = 1
PCM16_BITS = 16
PCM16_FULL_SCALE = 32768.0
UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # streaming writers that never patched the header


def pcm16_mono_samples(data: bytes, sample_rate: int) -> np.ndarray | None:
    """The int16 samples (a view into ``data``) of a mono 16-bit PCM WAV at ``sample_rate``, or
    ``None`` if ``data`` is not exactly that (then decode it with ``read_audio``)."""
    if len(data) < RIFF_HEADER_BYTES or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = RIFF_HEADER_BYTES
    fmt_ok = False
    while pos + CHUNK_HEADER_BYTES <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + CHUNK_HEADER_BYTES
        if chunk_id == b"fmt ":
            if size < FMT_MIN_BYTES or body + FMT_MIN_BYTES > len(data):
                return None
            audio_format, channels, rate, _, block_align, bits = struct.unpack_from(
                "<HHIIHH", data, body
            )
            fmt_ok = (
                audio_format == WAVE_FORMAT_PCM
                and channels == 1
                and rate == sample_rate
                and bits == PCM16_BITS
                and block_align == 2
            )
            if not fmt_ok:
                return None
        elif chunk_id == b"data":
            if not fmt_ok or size in UNKNOWN_SIZES or size % 2 or body + size > len(data):
                return None
            return np.frombuffer(data, dtype="<i2", count=size // 2, offset=body)
        pos = body + size + (size & 1)
    return None


def pcm16_to_float(pcm: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """int16 samples as float32 in [-1, 1), scaled as libsndfile does (one pass, into ``out``)."""
    return np.multiply(
        pcm, np.float32(1.0 / PCM16_FULL_SCALE), out=out, dtype=np.float32, casting="unsafe"
    )


def decode_pcm16_mono(data: bytes, sample_rate: int) -> np.ndarray | None:
    """float32 samples of a mono 16-bit PCM WAV at ``sample_rate``, or ``None`` if ``data`` is not
    exactly that.  An empty data chunk also gives ``None`` (``read_audio`` reports it)."""
    pcm = pcm16_mono_samples(data, sample_rate)
    if pcm is None or pcm.size == 0:
        return None
    return pcm16_to_float(pcm)
